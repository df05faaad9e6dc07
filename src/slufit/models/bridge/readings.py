"""Word readings: how the bridge really hears words, taken from unlabelled clips it never trained on.

Simulated bridge vectors (slufit.models.bridge.simulate) corrupt a text item character by
character. The head's real errors are phonetic and whole-word ("vacue topedio" for
"vacuum the patio"), which character confusions do not reproduce. So the bridge's
pretraining also voices a *lexicon sweep* (each of the locale's most frequent words, a
few times, in random sequences, by the unlabelled speaker pool), holds it out of the CTC's
training, and keeps, per word, the segments the head produced for it: its readings.

A simulated text item then takes, for each word that has readings (with probability
`simulate_words`), one of them, drawn at random, in place of the character simulation of
that word. Like the character confusions this spends no labelled speech: the sweep is
unlabelled speech of generic words, chosen by frequency, not from any SLU data.

How a word's segments are found: the clip's segments' argmax units are aligned to the
reference units (Levenshtein); a segment belongs to the reference word its aligned
position falls in. A segment aligned to a reference space is a word break if it is a
space, else it joins the word on its left. A space segment inside a word (the head split
it) stays in that word's reading, and a word the head dropped has an empty reading.

Stored beside the confusions as `readings.safetensors`: `rows` [segments, units] (every
reading, concatenated), `spans` [readings, 2] (start, length in `rows`), `word_spans`
[words, 2] (first reading, number of readings) and `words`, the words joined by newlines
as UTF-8 bytes (safetensors holds tensors only).
"""

from __future__ import annotations

import random
from itertools import accumulate
from dataclasses import dataclass
from pathlib import Path

import torch

READINGS_FILE = "readings.safetensors"


def lexicon_sweep(words: list[str], readings: int, seed: int) -> list[str]:
    """Texts of 2-7 words in which each of `words` occurs exactly `readings` times, in a seeded random order."""
    rng = random.Random(f"{seed}/lexicon")
    tokens = [w for w in words for _ in range(readings)]
    rng.shuffle(tokens)
    texts, start = [], 0
    while start < len(tokens):
        size = rng.randint(2, 7)
        if len(tokens) - start - size == 1:  # never leave a one-word remainder
            size += 1
        texts.append(" ".join(tokens[start: start + size]))
        start += size
    return texts


def word_segments(segments: torch.Tensor, reference: str, units: str) -> list[tuple[str, torch.Tensor]]:
    """(word, its segments) for each word of `reference` (already normalised onto `units`)."""
    from rapidfuzz.distance import Levenshtein

    space = units.index(" ")
    hyp = segments.argmax(-1).tolist() if segments.shape[0] else []
    ref = [units.index(c) for c in reference]
    # Which word each reference position belongs to (a space: the word on its left), and which are breaks.
    is_break = [u == space for u in ref]
    owner = list(accumulate(is_break[:-1], initial=0)) if ref else []  # breaks before each position
    words = reference.split(" ")
    members: list[list[int]] = [[] for _ in words]

    def place(j: int, position: int) -> None:
        if not ref:
            return
        position = min(max(position, 0), len(ref) - 1)
        if is_break[position] and hyp[j] == space:
            return  # a word break heard as one
        members[owner[position]].append(j)  # anything else heard at a break joins the word on its left

    a, b = "".join(chr(0x100 + u) for u in ref), "".join(chr(0x100 + u) for u in hyp)
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(a, b).as_list():
        if tag in ("equal", "replace"):
            for j in range(j1, j2):
                place(j, i1 + (j - j1) * (i2 - i1) // (j2 - j1))
        elif tag == "insert":
            for j in range(j1, j2):
                place(j, i1 - 1 if i1 > 0 else 0)
    return [(w, segments[sorted(m)]) for w, m in zip(words, members)]


def collect(segment_list: list[torch.Tensor], references: list[str], units: str) -> dict[str, list[torch.Tensor]]:
    """Per word, its segments in each clip that has it (the clips' segments and normalised references)."""
    by_word: dict[str, list[torch.Tensor]] = {}
    for segments, reference in zip(segment_list, references):
        if not reference:
            continue
        for word, rows in word_segments(segments, reference, units):
            by_word.setdefault(word, []).append(rows)
    return by_word


def pack(by_word: dict[str, list[torch.Tensor]], n_units: int) -> dict[str, torch.Tensor]:
    """Readings per word as the stored tensors (see the module docstring)."""
    words = sorted(by_word)
    rows, spans, word_spans, start = [], [], [], 0
    for word in words:
        word_spans.append([len(spans), len(by_word[word])])
        for reading in by_word[word]:
            spans.append([start, reading.shape[0]])
            rows.append(reading)
            start += reading.shape[0]
    return {"rows": torch.cat(rows) if rows else torch.zeros(0, n_units),
            "spans": torch.tensor(spans, dtype=torch.long).view(-1, 2),
            "word_spans": torch.tensor(word_spans, dtype=torch.long).view(-1, 2),
            "words": torch.tensor(list("\n".join(words).encode("utf-8")), dtype=torch.uint8)}


def build(segment_list: list[torch.Tensor], references: list[str], units: str) -> dict[str, torch.Tensor]:
    """The readings of every word in the clips (their segments and normalised references), as tensors."""
    return pack(collect(segment_list, references, units), len(units))


@dataclass
class Readings:
    """Per word, the head's real readings of it (see the module docstring); `draw` picks one at random."""

    tensors: dict[str, torch.Tensor]  # as stored (see the module docstring)
    rows: torch.Tensor
    spans: torch.Tensor
    index: dict[str, tuple[int, int]]

    @staticmethod
    def from_tensors(tensors: dict[str, torch.Tensor]) -> "Readings":
        text = bytes(tensors["words"].tolist()).decode("utf-8")
        words = text.split("\n") if text else []
        index = {w: (int(s), int(n)) for w, (s, n) in zip(words, tensors["word_spans"].tolist())}
        return Readings(tensors, tensors["rows"].float(), tensors["spans"], index)

    @staticmethod
    def load(path: str | Path) -> "Readings":
        from safetensors.torch import load_file

        return Readings.from_tensors(load_file(str(path)))

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def count(self) -> int:
        """Readings over all words."""
        return int(self.spans.shape[0])

    def by_word(self) -> dict[str, list[torch.Tensor]]:
        """Every word's readings, as `collect` gives them."""
        out = {}
        for word, (first, n) in self.index.items():
            out[word] = [self.rows[start: start + length] for start, length in self.spans[first: first + n].tolist()]
        return out

    def plus(self, more: dict[str, list[torch.Tensor]]) -> "Readings":
        """These readings and `more` (a word in both keeps all of its readings)."""
        merged = self.by_word()
        for word, readings in more.items():
            merged[word] = merged.get(word, []) + readings
        return Readings.from_tensors(pack(merged, self.rows.shape[1]))

    def draw(self, word: str) -> torch.Tensor:
        """One of `word`'s readings, uniformly (torch's global RNG: a resumed run draws the same)."""
        first, n = self.index[word]
        start, length = self.spans[first + int(torch.randint(n, ()))].tolist()
        return self.rows[start: start + length]


def with_stage_speech(lexicon: "Readings", items, segments, head_units: str) -> "Readings":
    """`lexicon` plus the readings a stage's speech items lend (their recordings heard through the bridge,
    `segments(items)`, aligned to their transcripts), or `lexicon` alone when the stage has no speech.
    The `speech_readings` option of the models that read the bridge (tiny, composed)."""
    from slufit.models.bridge.units import normalize

    speech = [item for item in items if item.modality == "speech"]
    if not speech:
        return lexicon
    letters = head_units.replace(" ", "")
    return lexicon.plus(collect(segments(speech), [normalize(i.example.text, letters) for i in speech], head_units))
