"""Batches prepared ahead of the training step (DESIGN.md, Speed): audio decoding, features and collation of
the next speech batches run in a background thread while the model trains on the current one.

Only batches whose preparation draws no random numbers go to the thread: speech and rehearsal batches
(decoding, log-mel features, the tiny bridge's segments are all deterministic). Text batches stay on the
training thread, in order, because filler swapping and the bridge's simulated text draw from torch's global
RNG, whose state checkpoints save: drawing them elsewhere or earlier would change what a resumed run draws.
The thread collates batches in the order the sampler gives them, each from the same items the step would
use, so a run with prefetching trains on exactly the batches of a run without (tested bit for bit).

The thread collates through its own copy of the adapter (slufit.train.loop._collating_copy): the step swaps
the adapter's module for accelerate's wrapper, and a fast tokenizer's padding state must not be shared by two
threads at once. A prefetcher lives for one stage: a stage's start may change the encoder cache (set_trainable), and a batch
collated from the cache must be used under the same cache.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterator

PREFETCHED_KINDS = ("speech", "rehearsal")


def prefetched(batches: Iterator[tuple[str, list]], prepare: Callable[[str, list], Any], depth: int
               ) -> Iterator[tuple[str, list, Future | None]]:
    """(kind, items, future) for each batch, in order; `future` holds `prepare(kind, items)` computed in a
    background thread for speech and rehearsal batches up to `depth` batches ahead, None for the others
    (and for every batch when depth is 0)."""
    if depth <= 0:
        for kind, items in batches:
            yield kind, items, None
        return
    window: deque[tuple[str, list, Future | None]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slufit-prefetch") as pool:
        try:
            for kind, items in batches:
                future = pool.submit(prepare, kind, items) if kind in PREFETCHED_KINDS else None
                window.append((kind, items, future))
                if len(window) > depth:
                    yield window.popleft()
            while window:
                yield window.popleft()
        finally:
            for _, _, future in window:  # a stage left early (an error): do not prepare the rest
                if future is not None:
                    future.cancel()
