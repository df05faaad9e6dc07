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

Two measurements: the plain CPU step, and the CPU step followed by `--gpu-wait-ms` of idle waiting (the
GIL released, no CPU used), which stands in for a GPU step, during which the host thread only waits on
kernels. A tiny model's CPU step is mostly Python work that holds the GIL, and on a busy 2-core machine no
core is free, so the plain measurement shows little; the second shows the overlap prefetching gives when
the step leaves the host idle, as a GPU step does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
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


def waiting_loader(wait_s: float):
    """load_model, with each loss followed by `wait_s` of idle waiting (GIL released, no CPU), standing in for a
    GPU step's kernel time, during which the host is free: what prefetching is for."""
    from slufit.models.registry import load_model

    def load(name, **options):
        model = load_model(name, **options)
        loss = model.loss

        def waiting(batch):
            value = loss(batch)
            time.sleep(wait_s)
            return value
        model.loss = waiting
        return model
    return load


def run(root: Path, model: Path, data: Path, prefetch: int, epochs: int, batch: int,
        wait_s: float = 0.0) -> tuple[float, int, dict]:
    config = {"model": {"name": str(model)}, "data": {"train": [str(data)]},
              "scheme": {"name": "speech_only", "epochs": epochs},
              "train": {"seed": 0, "batch_size": batch, "lr": 1e-4, "log_every": 1000, "prefetch": prefetch},
              "eval": {"modalities": []}, "run_dir": str(root / f"run-prefetch{prefetch}")}
    (root / f"p{prefetch}.yaml").write_text(yaml.safe_dump(config))
    config = resolve_paths(load_config(root / f"p{prefetch}.yaml", [f"run_dir={root / f'run-{prefetch}-{wait_s}'}"]))
    summary = train(config, load=waiting_loader(wait_s) if wait_s else None)
    seconds = summary["train_seconds"]
    from slufit.models.registry import load_model

    weights = {n: p.detach().clone() for n, p in load_model(str(Path(config.run_dir) / "model"))
               .module.named_parameters()}
    return seconds, summary["steps"], weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=64, help="LM hidden size = encoder width")
    parser.add_argument("--gpu-wait-ms", type=float, default=100.0,
                        help="second measurement: each step also waits this long, idle (a GPU's kernel time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        examples = corpus(root, args.recordings, args.seconds, rng)
        write_examples(root / "train.jsonl", examples)
        texts = [e.text for e in examples] + [format_target(e) for e in examples]
        hf, processor = tiny_qwen2_audio(tiny_tokenizer(texts, vocab_size=400), hidden=args.width, layers=1,
                                         audio_d_model=args.width, audio_layers=1, window_s=5)
        LALMAdapter(hf, processor.tokenizer, family=family_for(hf), processor=processor).save(root / "model")
        lines = [f"{args.recordings} recordings x {args.seconds:g} s, batch {args.batch}, width {args.width}, "
                 f"torch threads {args.threads}, {os.cpu_count()} CPU cores"]
        for wait_s in (0.0, args.gpu_wait_ms / 1000):
            results = {p: run(root, root / "model", root / "train.jsonl", p, args.epochs, args.batch, wait_s)
                       for p in (0, 2)}
            (t0, steps, w0), (t2, _, w2) = results[0], results[2]
            same = all(torch.equal(w0[n], w2[n]) for n in w0)
            step = "CPU step" if not wait_s else f"CPU step + {args.gpu_wait_ms:g} ms GPU-like wait"
            lines.append(f"{step}: prefetch 0 {t0 / steps * 1000:.0f} ms/step, prefetch 2 {t2 / steps * 1000:.0f} "
                         f"ms/step over {steps} steps: ratio {t0 / t2:.2f}x; identical final weights: {same}")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
