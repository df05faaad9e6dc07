"""Slot-filler swapping for training text items (slufit.train.augment, `data.filler_swap`)."""

from __future__ import annotations

import pytest
import torch

from slufit.data.example import Entity, Example, Recording
from slufit.models.base import SLUItem
from slufit.train.augment import FillerSwap
from slufit.train.config import config_from_dict


def example(i: int, text: str, entities: list[tuple[str, str]], locale: str = "en-US") -> Example:
    return Example(f"e{i}", locale, text, "transport", "query", "transport_query",
                   tuple(Entity(t, f) for t, f in entities))


EXAMPLES = [
    example(0, "train to boston on friday", [("place_name", "boston"), ("date", "friday")]),
    example(1, "bus to new york today", [("place_name", "new york"), ("date", "today")]),
    example(2, "boat to madrid", [("place_name", "madrid")]),
    example(3, "tram a paris", [("place_name", "paris")], locale="fr-FR"),
    example(4, "taxi to lisbon please", [("place_name", "lisbon")], locale="fr-FR"),
]


def test_a_swap_rewrites_the_transcript_and_the_labels_together():
    swap = FillerSwap(EXAMPLES, share=1.0)
    assert swap.fillers[("en-US", "place_name")] == ["boston", "madrid", "new york"]
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        out = swap.swap(EXAMPLES[0])
        place, date = (e.filler for e in out.entities)
        assert [e.type for e in out.entities] == ["place_name", "date"]
        assert place in {"boston", "madrid", "new york"} and date in {"friday", "today"}  # same locale and type
        assert out.text == f"train to {place} on {date}"
        assert (out.id, out.intent, out.locale) == (EXAMPLES[0].id, "transport_query", "en-US")
        seen.add(place)
    assert seen == {"boston", "madrid", "new york"}


def test_fillers_it_cannot_place_are_kept():
    swap = FillerSwap(EXAMPLES, share=1.0)
    # The filler is not in the transcript as whole words ("bostonian"): nothing to replace.
    odd = example(9, "a bostonian on friday", [("place_name", "boston")])
    torch.manual_seed(0)
    assert swap.swap(odd) == odd
    # A type with a single filler in the training text has nothing to swap with.
    lone = example(8, "wake me at noon", [("time", "noon")])
    assert FillerSwap(EXAMPLES + [lone], share=1.0).swap(lone) == lone


def test_only_text_items_are_swapped_and_share_zero_changes_nothing(tmp_path):
    swap = FillerSwap(EXAMPLES, share=1.0)
    spoken = EXAMPLES[0].with_recordings([Recording("a.wav")])
    items = [SLUItem(EXAMPLES[1], "text"), SLUItem(spoken, "speech", tmp_path / "a.wav")]
    torch.manual_seed(1)
    texts = {swap(items)[0].example.text for _ in range(30)}
    assert len(texts) > 1 and all(swap(items)[1] is items[1] for _ in range(5))
    assert FillerSwap(EXAMPLES, share=0.0)(items) == items


def test_the_same_rng_state_draws_the_same_swaps():
    swap = FillerSwap(EXAMPLES, share=0.5)
    items = [SLUItem(e, "text") for e in EXAMPLES] * 4
    torch.manual_seed(3)
    first = [i.example for i in swap(items)]
    torch.manual_seed(3)
    assert [i.example for i in swap(items)] == first


def test_the_share_is_checked():
    with pytest.raises(Exception, match="filler_swap"):
        config_from_dict({"model": {"name": "tiny"}, "data": {"filler_swap": 1.5}})
