"""Training throughput of the composed model (SmolLM2-135M-Instruct offline + tiny's CTC bridge) on the CPU, per
variant, in one run: full fine-tuning, full fine-tuning with frozen embeddings, LoRA; text batches (the LLM's own
tokens) and simulated bridge-vector batches; and generation (greedy) on text items.

    flock /tmp/slufit-heavy.lock python benchmarks/composed_throughput.py --data data/slurp/devel.jsonl
    python benchmarks/composed_throughput.py --llm /models/Qwen2.5-0.5B-Instruct --threads 8

Each measurement is `--steps` optimizer steps (collate + forward + backward + AdamW) after one warm-up step,
on the first utterances of `--data`; prints items/s, the estimated seconds per epoch of `--epoch-items`, and
ratios against full fine-tuning on text.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from train_steps import time_train_steps  # benchmarks/train_steps.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2")
    parser.add_argument("--bridge", default=None, help="a bridge folder (default: tiny's, `slufit pretrain`)")
    parser.add_argument("--data", type=Path, default=Path("data/slurp/devel.jsonl"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epoch-items", type=int, default=2033, help="items per epoch (SLURP devel: 2,033)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from slufit.data.example import read_examples
    from slufit.models.base import SLUItem
    from slufit.models.registry import load_model

    examples = read_examples(args.data)[: args.batch_size * (args.steps + 1)]
    items = [SLUItem(e, "text") for e in examples]
    batches = [items[i:i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    variants = {"full": {}, "full, frozen embeddings": {"freeze_embeddings": True},
                "lora r=16": {"lora": {"r": 16, "alpha": 32}}}
    results: dict[str, float] = {}
    for name, options in variants.items():
        for kind, simulate in (("text", 0.0), ("simulated", 1.0)):
            torch.manual_seed(0)
            start = time.perf_counter()
            model = load_model("composed", llm=args.llm, bridge=args.bridge, simulate_text=simulate, **options)
            loaded = time.perf_counter() - start
            seconds, n = time_train_steps(model, batches, args.steps, lr=1e-5)
            results[f"{name} / {kind}"] = n / seconds
            print(f"{name:26s} {kind:9s} {n / seconds:6.2f} items/s  ({seconds / args.steps:5.2f} s/step of "
                  f"{args.batch_size}; epoch of {args.epoch_items}: {args.epoch_items * seconds / n:5.0f} s; "
                  f"load {loaded:.1f} s)", flush=True)
            if name == "full" and kind == "text":
                model.module.eval()
                start = time.perf_counter()
                model.generate(batches[0], max_new_tokens=48)
                took = time.perf_counter() - start
                print(f"{'generation (greedy)':26s} {'text':9s} {len(batches[0]) / took:6.2f} items/s", flush=True)
            del model
    base = results["full / text"]
    print("ratios to full fine-tuning on text: " + ", ".join(f"{k} {v / base:.2f}x" for k, v in results.items()))


if __name__ == "__main__":
    main()
