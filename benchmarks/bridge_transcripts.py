"""How well a CTC bridge spells a voiced test set, as the composed model's `transcript` connector reads it.

For each recording of a canonical JSONL with audio (e.g. the 600 SLURP test utterances of
configs/composed/slurp_text_only.yaml, voiced by held-out speakers), the bridge's head spells it
(argmax of its segments, as `connector: transcript` does); the script prints CER / WER as spelled and
after the `lexicon` correction at each cutoff, so bridges and lexicon settings are compared on the
speech the composed model is scored on, without training an LLM (seconds, not a 14-minute run).

    python benchmarks/bridge_transcripts.py --bridge BRIDGE [BRIDGE ...] --data data/slurp-tts/test/test600.jsonl

BRIDGE: a `slufit pretrain` output folder (`.slufit-cache/bridge/<hash>`) or a saved tiny / composed model
folder (both hold bridge.safetensors and readings.safetensors). `--examples 5` prints a few lines.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from slufit.data.audio import load_audio
from slufit.data.example import read_examples, resolve_audio
from slufit.models.bridge import ctc
from slufit.models.bridge.pretrain import encode_waves, error_rates
from slufit.models.bridge.readings import READINGS_FILE, Readings
from slufit.models.bridge.units import normalize
from slufit.models.composed.lexicon import Lexicon, spelled
from slufit.models.ears import Ears


def head_of(folder: Path) -> tuple[ctc.CTCHead, str, str | None, float]:
    """The CTC head, its units, its ears and window, from a pretrain folder or a saved model folder."""
    from safetensors.torch import load_file

    info_file = folder / "bridge.json" if (folder / "bridge.json").is_file() else folder / "slufit_model.json"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    head = ctc.CTCHead.from_config(info["head"])
    head.load_state_dict(load_file(folder / "bridge.safetensors"))
    return head.eval(), info["units"], info.get("ears"), info.get("window_s", 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridge", nargs="+", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="canonical JSONL whose items have audio")
    parser.add_argument("--cutoffs", nargs="+", type=float, default=[80.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--examples", type=int, default=0, help="print this many references and spellings")
    parser.add_argument("--spellings-out", type=Path, help="write each bridge's references and spellings (JSON)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    examples = read_examples(args.data)
    examples = [e for e in examples if e.recordings]  # the first recording of each voiced item
    waves = [load_audio(resolve_audio(e.recordings[0], args.data)) for e in examples]
    print(f"{args.data}: {len(examples)} recordings")
    frames_by_ears: dict[tuple, list[torch.Tensor]] = {}
    spellings: dict[str, dict] = {}
    for folder in args.bridge:
        clock = time.time()
        head, units, ears_source, window_s = head_of(folder)
        key = (ears_source, window_s)
        if key not in frames_by_ears:  # one pass of the ears per encoder, shared by the bridges
            ears = Ears.load(ears_source, window_s)
            frames_by_ears[key] = encode_waves(ears, waves)
        with torch.inference_mode():
            segments = [ctc.segments(p) for p in ctc.posteriors(head, frames_by_ears[key])]
        letters = units.replace(" ", "")
        refs = [normalize(e.text, letters) for e in examples]
        heard = [spelled(s, units) for s in segments]
        rates = error_rates(refs, heard)
        spellings[str(folder)] = {"references": refs, "spelled": heard}
        print(f"\n{folder}  ({time.time() - clock:.1f} s)")
        print(f"  as spelled:              CER {100 * rates['cer']:5.1f} %  WER {100 * rates['wer']:5.1f} %")
        readings = Readings.load(folder / READINGS_FILE) if (folder / READINGS_FILE).is_file() else None
        for cutoff in args.cutoffs if readings is not None else []:
            lexicon = Lexicon.from_readings(readings, units, cutoff)
            fixed = [lexicon.correct(h) for h in heard]
            rates = error_rates(refs, fixed)
            print(f"  lexicon, cutoff {cutoff:5.1f}:  CER {100 * rates['cer']:5.1f} %  WER {100 * rates['wer']:5.1f} %")
        for ref, hyp in list(zip(refs, heard))[: args.examples]:
            print(f"    {ref!r}\n    {hyp!r}")
    if args.spellings_out:
        args.spellings_out.write_text(json.dumps(spellings, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
