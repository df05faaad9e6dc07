"""Training throughput of the tiny CTC-bridge model on the CPU: text batches, speech batches whose segments
are cached, and speech batches that run the ears and the CTC head (a first epoch), in one run.

    python benchmarks/bridge_throughput.py                 # after `slufit demo`: its bridge and data
    python benchmarks/bridge_throughput.py --bridge BRIDGE_FOLDER --data VOICED.jsonl --threads 1

A trained bridge is needed (a random head emits a segment for nearly every frame, so its speech items
would be several times longer than real ones). The LM has the demo's sizes. Each measurement is `--steps`
optimizer steps (collate + forward + backward + AdamW) after one warm-up step, on the first 256 utterances.
Prints items/s and the ratios against text batches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from train_steps import time_train_steps  # benchmarks/train_steps.py


def items_per_second(model, items, batch_size: int, steps: int, fresh_cache: bool = False) -> float:
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    # fresh_cache: every batch runs the ears and the head, as in a first epoch (the emptying is not timed).
    seconds, n = time_train_steps(model, batches, steps, before_step=model.cache._memory.clear if fresh_cache else None)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bridge", type=Path, default=Path("runs/demo/model"), help="a trained bridge folder")
    parser.add_argument("--data", type=Path, default=Path("runs/demo/data/en-US/train.jsonl"),
                        help="voiced canonical JSONL (its recordings are read)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from slufit.data.example import read_examples, resolve_audio
    from slufit.errors import SlufitError
    from slufit.models.base import SLUItem
    from slufit.models.registry import load_model

    if not (args.bridge / "bridge.json").is_file() or not args.data.is_file():
        raise SlufitError(f"{args.bridge} / {args.data}: run `slufit demo` first, or give --bridge and --data")
    examples = [e for e in read_examples(args.data) if e.recordings][:256]
    from slufit.demo import FULL

    model = load_model(str(args.bridge), lm_sizes=dict(FULL.lm_sizes))
    text = [SLUItem(e, "text") for e in examples]
    speech = [SLUItem(e, "speech", resolve_audio(e.recordings[0], args.data)) for e in examples]
    results = {"text": items_per_second(model, text, args.batch_size, args.steps),
               "speech, segments cached": None,
               "speech, ears + head run": items_per_second(model, speech, args.batch_size, args.steps, True)}
    segments = model.segments(speech)  # fill the cache
    results["speech, segments cached"] = items_per_second(model, speech, args.batch_size, args.steps)
    units = sum(len(model.vocab.unit_ids(e.text)) for e in examples) / len(examples)
    lm = sum(p.numel() for p in model.module.lm.parameters())
    print(f"tiny bridge: LM {lm / 1e6:.2f} M parameters ({dict(FULL.lm_sizes)['hidden']} wide), Whisper tiny.en ears, trained CTC head; "
          f"batch {args.batch_size}, {args.steps} steps, {torch.get_num_threads()} threads; input length per item: "
          f"{units:.1f} characters (text), {sum(s.shape[0] for s in segments) / len(segments):.1f} segments (speech)")
    for name, value in results.items():
        print(f"  {name:26s} {value:8.1f} items/s   {value / results['text']:5.2f}x text")


if __name__ == "__main__":
    main()
