"""The bridge's units and the language model's vocabulary, and the compact SLU target.

Units are characters: the letters of each locale's alphabet, the apostrophe and the
space (word break). Text is normalised onto them in one documented way, used
everywhere (CTC references, text items, targets):

- lowercase, Unicode NFC;
- a letter outside the alphabet folds to its unaccented base letter when that is in it
  (`café` -> `cafe` in en-US, which has no `é`);
- anything else (digits, punctuation, symbols) becomes a word break, and runs of
  breaks collapse to one space. Digits are not spelled out: the embedded corpus and
  SLURP write numbers as words; a filler holding digits loses them (its prediction
  can then not match exactly), which `normalize` reports through `dropped`.

The language model's vocabulary is: 4 specials, the units of every locale, one token
per intent (`<I:calendar_set>`) and one per entity type (`<S:date>`) of SLURP's label
space (labels.json: SLURP devel + test and the embedded corpus; MASSIVE uses the same
labels). The compact target of an example is

    <I:calendar_set> <S:event_name> m o n a <S:date> t u e s d a y <eos>

and `decode_target` turns generated tokens back into a SLURP prediction.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from slufit.data.example import Example
from slufit.errors import SlufitError

LATIN = "abcdefghijklmnopqrstuvwxyz'"
ALPHABETS: dict[str, str] = {
    "en-US": LATIN,
    "fr-FR": LATIN + "àâçèéêëîïôùûüÿœæ",
    "de-DE": LATIN + "äöüß",
    "es-ES": LATIN + "áéíñóúü",
}
SPACE = " "
PAD, BOS, SEP, EOS = "<pad>", "<bos>", "<sep>", "<eos>"
SPECIALS = (PAD, BOS, SEP, EOS)
LABELS_FILE = Path(__file__).with_name("labels.json")


def alphabet(locales: Iterable[str]) -> str:
    """The union of the locales' letters (in a fixed order), without the space."""
    letters: list[str] = []
    for locale in locales:
        if locale not in ALPHABETS:
            raise SlufitError(f"the tiny bridge has no alphabet for locale {locale!r}; known: {', '.join(ALPHABETS)}")
        letters += [c for c in ALPHABETS[locale] if c not in letters]
    return "".join(letters)


def normalize(text: str, letters: str) -> str:
    """`text` on the units `letters` + space (see the module docstring)."""
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text.lower()):
        if char in letters:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)[:1]
        out.append(base if base and base in letters else SPACE)
    return " ".join("".join(out).split())


def dropped(text: str, letters: str) -> set[str]:
    """Characters of `text` that `normalize` turns into a word break (other than spaces)."""
    return {c for c in unicodedata.normalize("NFC", text.lower())
            if not c.isspace() and c not in letters and unicodedata.normalize("NFKD", c)[:1] not in letters}


def default_labels() -> tuple[list[str], list[str]]:
    data = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    return list(data["intents"]), list(data["entity_types"])


@dataclass
class Vocabulary:
    """Token strings <-> ids for the bridge's language model (see the module docstring)."""

    units: str  # letters of every locale the model reads, then the space
    intents: list[str]
    entity_types: list[str]
    tokens: list[str] = field(init=False)
    ids: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        if SPACE not in self.units:
            self.units = self.units + SPACE
        self.tokens = [*SPECIALS, *self.units, *(f"<I:{i}>" for i in self.intents),
                       *(f"<S:{t}>" for t in self.entity_types)]
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    @staticmethod
    def for_locales(locales: Iterable[str]) -> "Vocabulary":
        intents, types = default_labels()
        return Vocabulary(alphabet(locales), intents, types)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def letters(self) -> str:
        return self.units.replace(SPACE, "")

    def id(self, token: str) -> int:
        return self.ids[token]

    def unit_ids(self, text: str) -> list[int]:
        """The ids of `text` normalised onto the units."""
        return [self.ids[c] for c in normalize(text, self.letters)]

    def target_ids(self, example: Example) -> list[int]:
        """The compact target: intent token, then each entity's type token and filler units, then <eos>."""
        intent = self.ids.get(f"<I:{example.intent}>")
        if intent is None:
            raise SlufitError(f"example {example.id!r}: intent {example.intent!r} is not in the tiny model's label "
                              f"space ({LABELS_FILE.name}: SLURP's {len(self.intents)} intents)")
        out = [intent]
        for entity in example.entities:
            slot = self.ids.get(f"<S:{entity.type}>")
            if slot is None:
                raise SlufitError(f"example {example.id!r}: entity type {entity.type!r} is not in the tiny model's "
                                  f"label space ({LABELS_FILE.name}: SLURP's {len(self.entity_types)} types)")
            out += [slot, *self.unit_ids(entity.filler)]
        return out + [self.ids[EOS]]

    def decode_target(self, ids: Sequence[int]) -> dict[str, Any]:
        """A SLURP prediction from generated ids: the first intent token, then (type, filler) pairs.

        Tolerant: units before any slot token are ignored, an empty filler drops its entity, no intent
        token gives empty scenario and action (the scorer counts it wrong)."""
        scenario, action, entities = "", "", []
        current: list[str] | None = None
        for i in ids:
            token = self.tokens[i] if 0 <= i < len(self.tokens) else PAD
            if token == EOS:
                break
            if token.startswith("<I:") and not scenario:
                scenario, _, action = token[3:-1].partition("_")
            elif token.startswith("<S:"):
                current = [token[3:-1], ""]
                entities.append(current)
            elif token in self.units and current is not None:
                current[1] += token
        return {"scenario": scenario, "action": action,
                "entities": [{"type": t, "filler": " ".join(f.split())} for t, f in entities if f.strip()]}

    def to_dict(self) -> dict[str, Any]:
        return {"units": self.units, "intents": self.intents, "entity_types": self.entity_types}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Vocabulary":
        return Vocabulary(data["units"], list(data["intents"]), list(data["entity_types"]))
