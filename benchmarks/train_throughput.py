"""Training throughput of a tiny Qwen2-Audio on the CPU: text batches, and speech batches with and
without the frozen-encoder cache, as samples/s and as ratios, in one run.

    python benchmarks/train_throughput.py                # tiny-default sizes (Whisper tiny encoder, 5 s window)
    python benchmarks/train_throughput.py --steps 5 --threads 1

The model has the tiny default's shapes (Whisper tiny encoder: d_model 384, 4 layers, 80 mel bins,
5 s window; a 4-layer, 256-wide Qwen2 LM) with random weights, so it needs no download. Audio is
synthetic (tones plus noise, ~3 s, SLURP-like), written to a temporary folder. Each measurement
runs `--steps` optimizer steps after one warm-up step; the cached measurement starts with every
recording already in the cache (its second epoch onwards), and the warm-up epoch is timed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from slufit.data.example import Example
from slufit.models.base import SLUItem
from slufit.models.lalm.adapter import LALMAdapter
from slufit.models.lalm.families import family_for
from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_tokenizer
from slufit.target import format_target
from train_steps import time_train_steps  # benchmarks/train_steps.py

WORDS = "wake me up at seven am play some jazz what is the weather in paris remind me to call mona".split()


def examples(n: int, rng: np.random.Generator) -> list[Example]:
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 9))))
        out.append(Example(id=f"b{i}", locale="en-US", text=text, scenario="alarm", action="set",
                           intent="alarm_set"))
    return out


def write_clips(folder: Path, n: int, rng: np.random.Generator) -> list[Path]:
    paths = []
    for i in range(n):
        samples = int(16000 * rng.uniform(2.5, 3.5))
        wave = 0.1 * np.sin(np.arange(samples) * rng.uniform(0.02, 0.2)) + 0.02 * rng.standard_normal(samples)
        paths.append(folder / f"clip{i}.wav")
        sf.write(paths[-1], wave.astype(np.float32), 16000)
    return paths


def samples_per_second(adapter: LALMAdapter, items: list[SLUItem], batch_size: int, steps: int) -> float:
    """Collate + forward + backward + AdamW step, `steps` times after one warm-up step."""
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    seconds, n = time_train_steps(adapter, batches, steps, lr=1e-4)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--items", type=int, default=32, help="distinct items (recordings) cycled through")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    exs = examples(args.items, rng)
    tokenizer = tiny_tokenizer([e.text for e in exs] + [format_target(e) for e in exs], vocab_size=2000)
    model, processor = tiny_qwen2_audio(tokenizer, hidden=256, layers=4, audio_d_model=384, audio_layers=4,
                                        num_mel_bins=80, window_s=5)
    with tempfile.TemporaryDirectory() as tmp:
        clips = write_clips(Path(tmp), args.items, rng)
        text = [SLUItem(e, "text") for e in exs]
        speech = [SLUItem(e, "speech", audio_path=p) for e, p in zip(exs, clips)]
        results = {}
        adapter = LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, use_encoder_cache=False)
        adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
        results["text"] = samples_per_second(adapter, text, args.batch_size, args.steps)
        results["speech, no cache"] = samples_per_second(adapter, speech, args.batch_size, args.steps)
        adapter.use_encoder_cache = True
        adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
        start = time.perf_counter()
        with torch.no_grad():  # fill the cache: one pass over every recording (the first epoch's extra work)
            for i in range(0, len(speech), args.batch_size):
                adapter.loss(adapter.collate(speech[i:i + args.batch_size]))
        fill = time.perf_counter() - start
        results["speech, cached encoder"] = samples_per_second(adapter, speech, args.batch_size, args.steps)
        assert adapter.module.cache.misses == len(speech), "every recording should be encoded exactly once"
    params = sum(p.numel() for p in model.parameters())
    print(f"tiny Qwen2-Audio, {params / 1e6:.1f} M parameters, batch {args.batch_size}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, audio encoder frozen, projector + LM trained")
    for name, value in results.items():
        print(f"  {name:24s} {value:7.1f} samples/s")
    base = results["speech, no cache"]
    print(f"  text / speech (no cache)            {results['text'] / base:5.2f}x")
    print(f"  speech cached / speech (no cache)   {results['speech, cached encoder'] / base:5.2f}x")
    print(f"  cache fill: {fill:.2f} s for {len(speech)} recordings (once per encoder)")


if __name__ == "__main__":
    main()
