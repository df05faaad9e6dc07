"""The timing loop the CPU training benchmarks share: collate + forward + backward + AdamW per batch.

    from train_steps import time_train_steps      # from a script in benchmarks/ (its folder is on sys.path)
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch


def time_train_steps(model: Any, batches: Sequence[list], steps: int, lr: float = 1e-3, stride: int = 1,
                     before_step: Callable[[], None] | None = None,
                     transform: Callable[[list], list] | None = None) -> tuple[float, int]:
    """Seconds and items of `steps` optimizer steps of an SLUModel, after one untimed warm-up step on the
    first batch. Step i trains on batch (i * stride) mod len(batches); `before_step()` runs untimed before
    each step (e.g. emptying a cache), `transform(batch)` timed, inside it (e.g. an augmentation)."""
    optimizer = torch.optim.AdamW([p for p in model.module.parameters() if p.requires_grad], lr=lr)

    def step(batch):
        loss = model.loss(model.collate(transform(batch) if transform else batch))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    seconds, items = 0.0, 0
    for i in range(steps):
        batch = batches[(i * stride) % len(batches)]
        if before_step is not None:
            before_step()
        start = time.perf_counter()
        step(batch)
        seconds += time.perf_counter() - start
        items += len(batch)
    return seconds, items
