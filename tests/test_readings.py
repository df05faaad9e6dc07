"""Word readings (slufit.models.bridge.readings): the lexicon sweep, the alignment of a clip's segments to its
reference words, storage, and simulated text items that take real readings."""

from __future__ import annotations

import collections

import pytest
import torch

from slufit.models.bridge.readings import Readings, build, lexicon_sweep, word_segments
from slufit.models.bridge.simulate import simulate, simulate_with_readings

UNITS = "abcdefghijklmnopqrstuvwxyz' "


def one_hot(text: str) -> torch.Tensor:
    """Segments whose argmax spells `text` (each a one-hot distribution over UNITS)."""
    return torch.nn.functional.one_hot(torch.tensor([UNITS.index(c) for c in text], dtype=torch.long),
                                       len(UNITS)).float().view(-1, len(UNITS))


def spelled(rows: torch.Tensor) -> str:
    return "".join(UNITS[i] for i in rows.argmax(-1).tolist())


def test_the_sweep_voices_each_word_the_asked_number_of_times():
    words = [f"w{i}" for i in range(50)]
    texts = lexicon_sweep(words, 2, seed=0)
    counts = collections.Counter(w for t in texts for w in t.split())
    assert counts == {w: 2 for w in words}
    assert all(2 <= len(t.split()) <= 8 for t in texts)  # 2-7, a last text may take one more
    assert lexicon_sweep(words, 2, seed=0) == texts and lexicon_sweep(words, 2, seed=1) != texts


def test_segments_are_given_to_the_words_they_were_heard_for():
    # "on the" heard run together, "light" as "lite", "turn" as "tern".
    found = word_segments(one_hot("tern onthe lite"), "turn on the light", UNITS)
    assert [(w, spelled(r)) for w, r in found] == [("turn", "tern"), ("on", "on"), ("the", "the"), ("light", "lite")]
    # A word the head dropped has an empty reading; a word it split keeps its space.
    assert [(w, spelled(r)) for w, r in word_segments(one_hot("big dog"), "a big dog", UNITS)] == [
        ("a", ""), ("big", "big"), ("dog", "dog")]
    assert [spelled(r) for _, r in word_segments(one_hot("bed room"), "bedroom", UNITS)] == ["bed room"]
    # Nothing heard at all.
    assert [r.shape[0] for _, r in word_segments(one_hot(""), "lights on", UNITS)] == [0, 0]


def test_readings_round_trip_and_draw_each_reading():
    tensors = build([one_hot("lunden now"), one_hot("london"), one_hot("now")], ["london now", "london", "now"], UNITS)
    readings = Readings.from_tensors(tensors)
    assert len(readings) == 2 and readings.count() == 4 and "london" in readings and "paris" not in readings
    torch.manual_seed(0)
    drawn = collections.Counter(spelled(readings.draw("london")) for _ in range(200))
    assert set(drawn) == {"lunden", "london"} and min(drawn.values()) > 60
    assert spelled(readings.draw("now")) == "now"


def test_more_readings_join_a_word_readings():
    readings = Readings.from_tensors(build([one_hot("lunden")], ["london"], UNITS))
    more = readings.plus({"london": [one_hot("london")], "paris": [one_hot("pari")]})
    assert len(more) == 2 and more.count() == 3 and readings.count() == 1  # the original is unchanged
    assert sorted(spelled(r) for r in more.by_word()["london"]) == ["london", "lunden"]
    assert spelled(more.draw("paris")) == "pari"


def clean_stats(n: int) -> dict[str, torch.Tensor]:
    """An error model that hears every unit right (so simulated rows are the units' one-hot rows)."""
    return {"emit": torch.cat([torch.eye(n), torch.zeros(n, 1)], 1), "insert": torch.cat([torch.ones(n) / n,
            torch.zeros(1)]), "rows": torch.eye(n)}


def test_simulated_items_take_real_readings_of_the_words_that_have_them():
    stats = clean_stats(len(UNITS))
    readings = Readings.from_tensors(build([one_hot("lunden")], ["london"], UNITS))
    text = "to london now"
    units = [UNITS.index(c) for c in text]
    words = text.split(" ")
    torch.manual_seed(0)
    assert spelled(simulate_with_readings(units, stats, readings, words, share=1.0)) == "to lunden now"
    assert spelled(simulate_with_readings(units, stats, readings, words, share=0.0)) == text
    assert torch.equal(simulate_with_readings(units, stats, readings, words, share=0.0), simulate(units, stats))
    # Deletions and insertions of the character simulation stay with their own word.
    stats["emit"][UNITS.index("o")] = torch.cat([torch.zeros(len(UNITS)), torch.ones(1)])  # every "o" dropped
    assert spelled(simulate_with_readings(units, stats, readings, words, share=1.0)) == "t lunden nw"


def test_about_half_the_words_take_a_reading_at_share_one_half():
    stats = clean_stats(len(UNITS))
    readings = Readings.from_tensors(build([one_hot("lunden")], ["london"], UNITS))
    text = "london " * 99 + "london"
    torch.manual_seed(0)
    out = spelled(simulate_with_readings([UNITS.index(c) for c in text], stats, readings, text.split(" "), 0.5))
    assert out.split(" ").count("lunden") == pytest.approx(50, abs=15)
