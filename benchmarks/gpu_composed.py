"""The composed model with a 1-8 B LLM on one GPU (the LegoSLM / TASU setting): training step time, tokens/s and
peak memory for LoRA and full fine-tuning, on text items and on simulated bridge-vector items, then greedy
generation; tiny's CTC bridge and Whisper tiny.en ears as everywhere (the ears run on the CPU, once per recording).

    python benchmarks/gpu_composed.py --llm Qwen/Qwen2.5-1.5B-Instruct --data data/slurp/devel.jsonl
    python benchmarks/gpu_composed.py --llm /models/Llama-3.2-3B-Instruct --variants lora --batch-size 32
    python benchmarks/gpu_composed.py --llm smollm2 --device cpu --steps 2        # the same code on a CPU

The LLM is a hub id (online) or a folder; bf16 weights on the GPU (--dtype). Not run here (no GPU was lent
to the session that wrote it): its first run on a GPU should go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", required=True, help="hub id or folder of a causal LM with a chat template")
    parser.add_argument("--bridge", default=None, help="a bridge folder (default: tiny's, `slufit pretrain`)")
    parser.add_argument("--data", type=Path, default=Path("data/slurp/devel.jsonl"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=["lora", "full"], choices=["lora", "full"])
    args = parser.parse_args()

    from slufit.data.example import read_examples
    from slufit.models.base import SLUItem
    from slufit.models.registry import load_model

    examples = read_examples(args.data)[: args.batch_size * (args.steps + 1)]
    items = [SLUItem(e, "text") for e in examples]
    batches = [items[i:i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    cuda = torch.device(args.device).type == "cuda"
    for variant in args.variants:
        for kind, simulate in (("text", 0.0), ("simulated", 1.0)):
            torch.manual_seed(0)
            lora = {"r": 16, "alpha": 32} if variant == "lora" else None
            model = load_model("composed", llm=args.llm, bridge=args.bridge, lora=lora, dtype=args.dtype,
                               device=args.device, simulate_text=simulate)
            optimizer = torch.optim.AdamW([p for p in model.module.parameters() if p.requires_grad], lr=1e-5)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            seconds, tokens = 0.0, 0
            for step, batch in enumerate(batches[: args.steps + 1]):  # the first step warms up, untimed
                tensors = {k: v.to(args.device) for k, v in model.collate(batch).items()}
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                model.loss(tensors).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if cuda:
                    torch.cuda.synchronize()
                if step:
                    seconds += time.perf_counter() - start
                    tokens += int(tensors["attention_mask"].sum())
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
            trainable = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
            print(f"{variant:5s} {kind:9s} {1000 * seconds / args.steps:8.1f} ms/step  {tokens / seconds:8.0f} tokens/s  "
                  f"peak {peak:.1f} GiB  trainable {trainable / 1e6:.1f} M", flush=True)
            if variant == args.variants[0] and kind == "text":
                start = time.perf_counter()
                model.generate(batches[0], max_new_tokens=48)
                print(f"generation (greedy, batch {len(batches[0])}): {time.perf_counter() - start:.2f} s", flush=True)
            del model, optimizer
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
