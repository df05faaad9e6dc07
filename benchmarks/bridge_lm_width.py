"""What an epoch of the tiny model's LM costs at each width, and what filler swapping adds, in one run.

    python benchmarks/bridge_lm_width.py                    # after `slufit demo`: its bridge and data

The demo's time goes to LM passes (docs/tiny.md: with filler swapping the LM keeps improving with epochs), so
the width sets how many epochs fit in 20 minutes. Each measurement: `--steps` optimizer steps on text batches
(the demo's simulate_text 0.75; collate + forward + backward + AdamW) after one warm-up step, on length-sorted
batches of the first 1,024 training utterances. Prints ms per item and the ratio against the demo's LM;
filler swapping twice: replacements of any length, and of about the same length (FillerSwap's default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from train_steps import time_train_steps  # benchmarks/train_steps.py

WIDTHS = {"128 / MLP 384 (the demo's)": (128, 384), "192 / MLP 512 (session 2's demo)": (192, 512),
          "256 / MLP 768 (the default lm_sizes)": (256, 768)}


def ms_per_item(model, batches, steps: int, augment=None) -> float:
    seconds, items = time_train_steps(model, batches, steps, stride=7, transform=augment)  # stride: spread over lengths
    return 1000 * seconds / items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bridge", type=Path, default=Path("runs/demo/model"), help="a trained bridge folder")
    parser.add_argument("--data", type=Path, default=Path("runs/demo/data/en-US/train.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from slufit.data.example import read_examples
    from slufit.demo import FULL
    from slufit.errors import SlufitError
    from slufit.models.base import SLUItem
    from slufit.models.registry import load_model
    from slufit.train.augment import FillerSwap

    if not (args.bridge / "bridge.json").is_file() or not args.data.is_file():
        raise SlufitError(f"{args.bridge} / {args.data}: run `slufit demo` first, or give --bridge and --data")
    examples = read_examples(args.data)[:1024]
    items = sorted((SLUItem(e, "text") for e in examples), key=lambda i: len(i.example.text))
    batches = [items[i:i + FULL.batch_size] for i in range(0, len(items), FULL.batch_size)]
    results = {}
    for name, (hidden, mlp) in WIDTHS.items():
        torch.manual_seed(0)
        model = load_model(str(args.bridge), lm_sizes={"hidden": hidden, "layers": 2, "heads": 4, "kv_heads": 2,
                                                       "intermediate": mlp}, simulate_text=FULL.simulate_text)
        results[name] = ms_per_item(model, batches, args.steps)
        if hidden == dict(FULL.lm_sizes)["hidden"]:
            short = name.split(" (")[0] + f" + filler_swap {FULL.filler_swap}"
            for label, tolerance in ((", any length", float("inf")), (", length-matched", 0.25)):
                swap = FillerSwap(examples, FULL.filler_swap, length_tolerance=tolerance)
                results[short + label] = ms_per_item(model, batches, args.steps, swap)
    base = results[next(iter(WIDTHS))]
    print(f"tiny bridge LM, 2 layers, text batches of {FULL.batch_size} (simulate_text {FULL.simulate_text}), "
          f"{args.steps} steps each, {torch.get_num_threads()} threads")
    for name, value in results.items():
        print(f"  {name:56s} {value:6.2f} ms per item   {value / base:5.2f}x the demo's LM")


if __name__ == "__main__":
    main()
