"""Text-side augmentation of training items: slot-filler swapping (`data.filler_swap`).

A text item drawn for a batch has, with probability `share`, each of its slot fillers
replaced in its transcript and labels by another filler of the same slot type and
locale, drawn from the fillers of the run's own text items. It spends no speech: text is
the plentiful side, and this is one more way to use it.

Why: a small language model trained on a few thousand templated or repetitive utterances
learns which filler goes with which carrier sentence instead of reading the filler
("how many people live in boston" -> "berlin", on clean text). Swapping breaks those
pairs, so the model has to copy the filler from its input. Measured on the demo
(docs/tiny.md): text-only speech SLU-F1 64 -> 71, 100 %-speech 75 -> 86.

Replacements are drawn among the fillers of about the same length (within `length_tolerance`
of the original's characters, at least 2; all of them if none other is that close). Batches
are bucketed by length before the swap (slufit.train.sampler), so a swap to any length
would pad them: measured 11 % slower per item (benchmarks/RESULTS.md). The draw is uniform
inside that window, so a filler of an unusual length is drawn less often than under a
uniform draw over all fillers.

A filler that cannot be found in the transcript (as whole words) is left as it is. Draws
use torch's global RNG, which checkpoints restore, so a resumed run swaps exactly as an
uninterrupted one.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace
from functools import lru_cache
from typing import Iterable, Sequence

import torch

from slufit.data.example import Entity, Example
from slufit.models.base import SLUItem


@lru_cache(maxsize=None)
def _pattern(filler: str) -> re.Pattern:
    return re.compile(r"(?<!\S)" + re.escape(filler) + r"(?!\S)")


def _find(text: str, filler: str, start: int) -> re.Match | None:
    """`filler` as whole words in `text`, from `start` on (then from the beginning)."""
    pattern = _pattern(filler)
    return pattern.search(text, start) or pattern.search(text)


class FillerSwap:
    """Swaps slot fillers of text items among those of the same (locale, slot type)."""

    def __init__(self, examples: Iterable[Example], share: float, length_tolerance: float = 0.25) -> None:
        self.share = share
        self.length_tolerance = length_tolerance
        fillers: dict[tuple[str, str], set[str]] = {}
        for example in examples:
            for entity in example.entities:
                fillers.setdefault((example.locale, entity.type), set()).add(entity.filler)
        # Sorted: the draws depend on the data and the RNG only, not on set order.
        self.fillers = {key: sorted(values) for key, values in fillers.items()}
        # The same fillers by length, for the window of each draw.
        self._by_length = {key: sorted(values, key=lambda f: (len(f), f)) for key, values in self.fillers.items()}

    def _draw(self, key: tuple[str, str], filler: str) -> str:
        """A filler of `key` of about `filler`'s length (uniform inside the window)."""
        choices = self._by_length[key]
        slack = max(2.0, self.length_tolerance * len(filler))
        low = bisect.bisect_left(choices, len(filler) - slack, key=len)
        high = bisect.bisect_right(choices, len(filler) + slack, key=len)
        if high - low < 2:  # nothing else that close: any filler of the type
            low, high = 0, len(choices)
        return choices[low + int(torch.randint(high - low, ()))]

    def swap(self, example: Example) -> Example:
        text, entities, position = example.text, [], 0
        for entity in example.entities:
            key = (example.locale, entity.type)
            found = _find(text, entity.filler, position) if len(self.fillers.get(key, ())) > 1 else None
            if found is None:
                entities.append(entity)
                continue
            new = self._draw(key, entity.filler)
            text = text[:found.start()] + new + text[found.end():]
            position = found.start() + len(new)
            entities.append(Entity(entity.type, new))
        return replace(example, text=text, entities=tuple(entities))

    def __call__(self, items: Sequence[SLUItem]) -> list[SLUItem]:
        if not self.share:
            return list(items)
        out = []
        for item in items:
            if item.modality == "text" and item.example.entities and float(torch.rand(())) < self.share:
                item = replace(item, example=self.swap(item.example))
            out.append(item)
        return out
