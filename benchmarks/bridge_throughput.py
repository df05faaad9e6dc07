"""Training throughput of the tiny CTC-bridge model on the CPU: text batches, speech batches whose segments
are cached, and speech batches that run the ears and the CTC head (a first epoch), in one run.

    python benchmarks/bridge_throughput.py                 # the demo's LM sizes, batch 32
    python benchmarks/bridge_throughput.py --threads 1 --steps 10

The ears are the real Whisper tiny.en encoder (offline, pinned); the CTC head has the real sizes with random
weights (its output does not change the cost of what follows); speech is 64 embedded-corpus utterances
voiced by espeak-ng. Each measurement is `--steps` optimizer steps (collate + forward + backward + AdamW)
after one warm-up step. Prints items/s and the ratios against text batches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def items_per_second(model, items, batch_size: int, steps: int, fresh_cache: bool = False) -> float:
    params = [p for p in model.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]

    def step(batch):
        loss = model.loss(model.collate(batch))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    total = 0.0
    for i in range(steps):
        if fresh_cache:
            model.cache._memory.clear()  # every batch runs the ears and the head, as in a first epoch
        start = time.perf_counter()
        step(batches[i % len(batches)])
        total += time.perf_counter() - start
    return steps * batch_size / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from bridge_support import make_bridge

    from slufit.corpus import build_corpus
    from slufit.data.example import read_examples
    from slufit.models.base import SLUItem
    from slufit.models.bridge.ctc import CTCHead
    from slufit.models.registry import load_model
    from slufit.speech import synthesize_examples

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_corpus(root / "corpus", locales=["en-US"], n_train=64, n_dev=0, n_test=0, n_pretrain=0, seed=0)
        examples = read_examples(root / "corpus" / "en-US" / "train.jsonl")
        spoken = synthesize_examples(examples, root / "speech", speakers="train", progress=False)
        bridge = make_bridge(root / "bridge")
        model = load_model(str(bridge), lm_sizes={"hidden": 192, "layers": 2, "heads": 4, "kv_heads": 2,
                                                  "intermediate": 512})
        head = CTCHead(384, len(model.head_units))  # the real head sizes (make_bridge's is a small one)
        head.requires_grad_(False)
        model.module.head = head.eval()
        text = [SLUItem(e, "text") for e in spoken]
        speech = [SLUItem(e, "speech", root / "speech" / e.recordings[0].path) for e in spoken]
        results = {"text": items_per_second(model, text, args.batch_size, args.steps),
                   "speech, segments cached": None,
                   "speech, ears + head run": items_per_second(model, speech, args.batch_size, args.steps, True)}
        model.segments(speech)  # fill the cache
        results["speech, segments cached"] = items_per_second(model, speech, args.batch_size, args.steps)
    lm = sum(p.numel() for p in model.module.lm.parameters())
    print(f"tiny bridge: LM {lm / 1e6:.2f} M parameters (192 wide), real Whisper tiny.en ears, CTC head "
          f"{sum(p.numel() for p in head.parameters()) / 1e6:.2f} M; batch {args.batch_size}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    for name, value in results.items():
        print(f"  {name:26s} {value:8.1f} items/s   {value / results['text']:5.2f}x text")


if __name__ == "__main__":
    main()
