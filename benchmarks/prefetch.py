"""Step time of the real training loop with and without prefetching (slufit.train.prefetch), in one run.

    python benchmarks/prefetch.py                  # 48 FLAC recordings of 4 s, batch 8, 3 epochs each way
    python benchmarks/prefetch.py --threads 1 --epochs 2

A tiny random-weight Qwen2-Audio (encoder 64 wide x 1 layer, 128 mel bins, 5 s window; Qwen2 LM 64 wide x
1 layer: a step about as costly as preparing its batch, as on a GPU) trains speech-only with its encoder
trainable, so every speech batch needs its recordings decoded and its log-mel features computed (no
encoder cache): the CPU work prefetching moves off the training thread. Both runs train the same batches
from the same seed; the script checks that they end with identical weights, then prints seconds per
optimizer step (the loop's own training time, summary.json's train_seconds: no model loading) for
`train.prefetch` 0 and 2 and their ratio. torch computes with `--threads` threads, leaving the other cores
to the prefetch thread.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from slufit.data.example import Entity, Example, Recording, write_examples
from slufit.models.lalm.adapter import LALMAdapter
from slufit.models.lalm.families import family_for
from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_tokenizer
from slufit.target import format_target
from slufit.train.config import load_config, resolve_paths
from slufit.train.loop import train

WORDS = "wake me up at seven am play some jazz what is the weather in paris remind me to call mona".split()


def corpus(root: Path, n: int, seconds: float, rng: np.random.Generator) -> list[Example]:
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 9))))
        path = root / "audio" / f"r{i}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.2 * np.sin(2 * np.pi * (150 + 10 * i) * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(path, wave.astype(np.float32), 16000)
        out.append(Example(f"b{i}", "en-US", text, "alarm", "set", "alarm_set", (Entity("time", "seven am"),),
                           (Recording(f"audio/{path.name}", "spk", seconds),), "bench"))
    return out


def run(root: Path, model: Path, data: Path, prefetch: int, epochs: int, batch: int) -> tuple[float, int, dict]:
    config = {"model": {"name": str(model)}, "data": {"train": [str(data)]},
              "scheme": {"name": "speech_only", "epochs": epochs},
              "train": {"seed": 0, "batch_size": batch, "lr": 1e-4, "log_every": 1000, "prefetch": prefetch},
              "eval": {"modalities": []}, "run_dir": str(root / f"run-prefetch{prefetch}")}
    (root / f"p{prefetch}.yaml").write_text(yaml.safe_dump(config))
    summary = train(resolve_paths(load_config(root / f"p{prefetch}.yaml")))
    seconds = summary["train_seconds"]
    from slufit.models.registry import load_model

    weights = {n: p.detach().clone() for n, p in load_model(str(root / f"run-prefetch{prefetch}" / "model"))
               .module.named_parameters()}
    return seconds, summary["steps"], weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        examples = corpus(root, args.recordings, args.seconds, rng)
        write_examples(root / "train.jsonl", examples)
        texts = [e.text for e in examples] + [format_target(e) for e in examples]
        hf, processor = tiny_qwen2_audio(tiny_tokenizer(texts, vocab_size=400), hidden=64, layers=1,
                                         audio_d_model=64, audio_layers=1, window_s=5)
        LALMAdapter(hf, processor.tokenizer, family=family_for(hf), processor=processor).save(root / "model")
        results = {}
        for prefetch in (0, 2):
            results[prefetch] = run(root, root / "model", root / "train.jsonl", prefetch, args.epochs, args.batch)
        (t0, steps, w0), (t2, _, w2) = results[0], results[2]
        same = all(torch.equal(w0[n], w2[n]) for n in w0)
        print(f"{args.recordings} recordings x {args.seconds:g} s, batch {args.batch}, {steps} steps each, "
              f"torch threads {args.threads}, CPU cores {torch.get_num_interop_threads()} interop")
        print(f"prefetch 0: {t0 / steps * 1000:.0f} ms/step ({t0:.1f} s)")
        print(f"prefetch 2: {t2 / steps * 1000:.0f} ms/step ({t2:.1f} s)")
        print(f"ratio (prefetch 0 / prefetch 2): {t0 / t2:.2f}x; identical final weights: {same}")


if __name__ == "__main__":
    main()
