"""Modality-homogeneous, length-bucketed batches, fully determined by a seed.

Every batch holds items of one kind (text, speech, or rehearsal), so a text batch
never runs the audio encoder and no distributed step mixes modalities across
processes (a known cause of crashes and hangs). Within a kind, items are shuffled,
then sorted by length inside windows of `bucket_batches` batches, so a batch holds
items of similar length (little padding) while the order of batches stays random.

The batches of a stage are a pure function of (seed, stage index, epoch), so the
sampler's whole state is one number: the index of the next batch in the stage.
That is what a checkpoint stores and what `--resume` skips to.
"""

from __future__ import annotations

import math
import random
from typing import Iterator, Sequence

from slufit.models.base import SLUItem
from slufit.train.schemes import Stage


def item_length(item: SLUItem) -> int:
    """How long the item's training sequence is, known without opening audio files: its transcript (which
    tracks both the text prompt and the spoken duration, so it serves both modalities) plus the fillers its
    target copies, each with a little for its slot label. Measured on the demo's tiny model: batches bucketed
    on this are 93 % real tokens, on the transcript alone 79 % (benchmarks/RESULTS.md)."""
    return len(item.example.text) + sum(len(e.filler) + 2 for e in item.example.entities)


def epoch_batches(kinds: Sequence[str], lengths: Sequence[int], batch_size: int, bucket_batches: int,
                  seed: str) -> list[list[int]]:
    """One epoch of batches (lists of item indices), each of a single kind, in a seeded random order."""
    rng = random.Random(seed)
    batches: list[list[int]] = []
    for kind in sorted(set(kinds)):
        indices = [i for i, k in enumerate(kinds) if k == kind]
        rng.shuffle(indices)
        window = batch_size * bucket_batches
        for start in range(0, len(indices), window):
            bucket = sorted(indices[start:start + window], key=lambda i: lengths[i])
            batches += [bucket[j:j + batch_size] for j in range(0, len(bucket), batch_size)]
    rng.shuffle(batches)
    return batches


def batches_per_epoch(stage: Stage, batch_size: int) -> int:
    counts = stage.counts()
    return sum(math.ceil(n / batch_size) for n in counts.values())


class StageSampler:
    """The batches of one stage: `epochs` passes over its items (the last one possibly partial)."""

    def __init__(self, stage: Stage, stage_index: int, seed: int, batch_size: int, bucket_batches: int):
        self.items = list(stage.items) + list(stage.rehearsal)
        self.kinds = [i.modality for i in stage.items] + ["rehearsal"] * len(stage.rehearsal)
        lengths = [item_length(i) for i in self.items]
        per_epoch = batches_per_epoch(stage, batch_size)
        self.total = max(1, round(stage.epochs * per_epoch))
        self.batches: list[list[int]] = []
        for epoch in range(math.ceil(self.total / per_epoch)):
            self.batches += epoch_batches(self.kinds, lengths, batch_size, bucket_batches,
                                          seed=f"{seed}/stage{stage_index}/epoch{epoch}")
        del self.batches[self.total:]

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[tuple[str, list[SLUItem]]]:
        return self.iterate(0)

    def iterate(self, start: int) -> Iterator[tuple[str, list[SLUItem]]]:
        """(kind, items) of each batch from batch index `start` on (a resumed run starts mid-stage)."""
        for batch in self.batches[start:]:
            yield self.kinds[batch[0]], [self.items[i] for i in batch]


def shard(items: list[SLUItem], rank: int, world: int) -> list[SLUItem]:
    """This process's share of a global batch; a process left empty repeats the first item
    (every process must run a forward and backward on every step)."""
    return items[rank::world] or items[:1]
