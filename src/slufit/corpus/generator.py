"""The embedded multilingual SLU corpus: templated utterances in SLURP's label space.

Each locale module in `slufit.corpus.locales` lists templates per intent and
fillers per entity type, written by hand and parallel across locales (same
intents, same slot types at each template position), as MASSIVE is.

Held-out design, so that pretraining never sees the test set:
- templates at even positions of an intent's list form the "slu" group, odd
  positions the "pre" group; fillers likewise (even: "slu", odd: "pre");
- dev and test draw only slu templates with slu fillers;
- pretrain draws only pre templates with pre fillers, so its templates AND its
  fillers are disjoint from dev and test;
- train draws from everything.
Every text with slots appears at most once per locale across the four splits,
so such test utterances are never seen verbatim in train. Fixed phrases
without slots ("tell me a joke") recur, as they do in SLURP, up to their
fair share of a split: otherwise the few phrases of an intent like
general_joke would be used up by test and pretrain and the intent would
vanish from train.

A few short templates are deliberately shared by confusable intents ("my
{list_name} list" is lists_createoradd, lists_query and lists_remove), as
SLURP's terse requests are ambiguous, so text alone cannot reach 100 %.

Determinism: each (seed, locale, split) has its own `random.Random` seeded by
a string (stable across runs and Python processes), so the same seed gives
byte-identical files.
"""

from __future__ import annotations

import importlib
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from slufit.data.example import Entity, Example, write_examples
from slufit.errors import SlufitError

LOCALES = ("en-US", "fr-FR", "de-DE", "es-ES")
SPLITS = ("train", "dev", "test", "pretrain")
# Defaults sized so that `slufit demo` synthesizes and trains in minutes on 2 CPU cores.
DEFAULT_SIZES = {"train": 2000, "dev": 200, "test": 300, "pretrain": 3000}
SOURCE = "embedded"

SLOT = re.compile(r"\{(\w+)\}")
# Which template/filler groups each split may draw from.
_GROUPS = {"train": ("slu", "pre"), "dev": ("slu",), "test": ("slu",), "pretrain": ("pre",)}


@dataclass(frozen=True)
class LocaleData:
    locale: str
    templates: dict[str, list[str]]
    fillers: dict[str, list[str]]


def load_locale(locale: str) -> LocaleData:
    """Templates and fillers of one locale; SlufitError naming the known locales if unknown."""
    if locale not in LOCALES:
        raise SlufitError(f"unknown locale {locale!r}; the embedded corpus has {', '.join(LOCALES)}")
    module = importlib.import_module(f"slufit.corpus.locales.{locale.replace('-', '_')}")
    return LocaleData(locale, module.TEMPLATES, module.FILLERS)


def group_of(index: int) -> str:
    """Held-out group of the template or filler at `index` in its list."""
    return "slu" if index % 2 == 0 else "pre"


def _pick(items: list[str], groups: tuple[str, ...]) -> list[str]:
    return [item for i, item in enumerate(items) if group_of(i) in groups]


def _realize(template: str, fillers: dict[str, list[str]], rng: random.Random) -> tuple[str, list[Entity]]:
    """Fill every slot of `template`; a type used twice gets two different fillers."""
    entities: list[Entity] = []
    used: dict[str, set[str]] = {}

    def fill(match: re.Match) -> str:
        kind = match.group(1)
        choices = [f for f in fillers[kind] if f not in used.setdefault(kind, set())]
        filler = rng.choice(choices)
        used[kind].add(filler)
        entities.append(Entity(kind, filler))
        return filler

    text = SLOT.sub(fill, template)
    return " ".join(text.split()), entities


def generate_split(data: LocaleData, split: str, n: int, seed: int, seen: set[str]) -> list[Example]:
    """Draw `n` examples for one split: an intent uniformly, then a template, then fillers.

    `seen` holds texts already used in this locale (updated in place); duplicates are redrawn.
    Raises SlufitError if the split's pool of distinct texts is too small for `n`.
    """
    rng = random.Random(f"slufit-corpus:{seed}:{data.locale}:{split}")
    groups = _GROUPS[split]
    fillers = {kind: _pick(items, groups) for kind, items in data.fillers.items()}
    templates = {intent: _pick(items, groups) for intent, items in data.templates.items()}
    intents = sorted(intent for intent, items in templates.items() if items)
    capacity = _capacity(templates, fillers, n, len(intents))
    if n > capacity:
        raise SlufitError(f"{data.locale}: only about {capacity} distinct {split} utterances can be drawn "
                          f"for {n} asked; ask for fewer")
    examples: list[Example] = []
    fixed: Counter[str] = Counter()
    misses = 0
    while len(examples) < n:
        intent = rng.choice(intents)
        template = rng.choice(templates[intent])
        text, entities = _realize(template, fillers, rng)
        # A text with slots is drawn once per locale. A fixed phrase ("tell me a joke") may recur, as in
        # SLURP, up to about its template's fair share of the split, so that intents made mostly of fixed
        # phrases neither vanish nor flood the split.
        if entities:
            fresh = text not in seen
        else:
            fresh = fixed[text] < math.ceil(n / (len(intents) * len(templates[intent])))
            fixed[text] += 1 if fresh else 0
        if not fresh:
            misses += 1
            if misses > 20 * max(n, 100):
                raise SlufitError(
                    f"{data.locale}: only {len(examples)} distinct {split} utterances could be drawn "
                    f"for {n} asked; ask for fewer")
            continue
        seen.add(text)
        scenario, action = split_intent(intent)
        examples.append(Example(
            id=f"embedded-{data.locale}-{split}-{len(examples):05d}", locale=data.locale, text=text,
            scenario=scenario, action=action, intent=intent, entities=tuple(entities), source=SOURCE))
    return examples


def _capacity(templates: dict[str, list[str]], fillers: dict[str, list[str]], n: int, n_intents: int) -> int:
    """How many examples a split can hold: distinct texts with slots, plus fixed phrases up to their cap."""
    total = 0
    for items in templates.values():
        for template in items:
            kinds = SLOT.findall(template)
            if not kinds:
                total += math.ceil(n / (n_intents * len(items)))
                continue
            combos = 1
            for i, kind in enumerate(kinds):
                combos *= max(len(fillers[kind]) - kinds[:i].count(kind), 0)
            total += combos
    return total


def split_intent(intent: str) -> tuple[str, str]:
    """SLURP intents are `scenario_action`, and scenarios never contain '_' (actions may: hue_lightoff)."""
    scenario, _, action = intent.partition("_")
    return scenario, action


def generate_locale(locale: str, sizes: dict[str, int], seed: int) -> dict[str, list[Example]]:
    """All splits of one locale. Test and dev are drawn first, so their texts are never taken by train;
    pretrain before train, because its pool (held-out templates x held-out fillers) is the smallest."""
    data = load_locale(locale)
    seen: set[str] = set()
    order = ("test", "dev", "pretrain", "train")
    out = {split: generate_split(data, split, sizes[split], seed, seen) for split in order}
    return {split: out[split] for split in SPLITS}


def build_corpus(out_dir: str | Path, locales: Iterable[str] = LOCALES, n_train: int = DEFAULT_SIZES["train"],
                 n_dev: int = DEFAULT_SIZES["dev"], n_test: int = DEFAULT_SIZES["test"],
                 n_pretrain: int = DEFAULT_SIZES["pretrain"], seed: int = 0) -> dict[str, dict[str, int]]:
    """Write `out_dir/<locale>/{train,dev,test,pretrain}.jsonl`; returns counts per locale and split.

    Every locale is generated in memory before anything is written, so a bad
    argument leaves earlier outputs untouched; each file is written atomically.
    """
    locales = list(locales)
    if not locales:
        raise SlufitError("no locale given")
    for locale in locales:
        load_locale(locale)
    sizes = {"train": n_train, "dev": n_dev, "test": n_test, "pretrain": n_pretrain}
    for split, n in sizes.items():
        if n < 0:
            raise SlufitError(f"--{split} must be >= 0, got {n}")
    generated = {locale: generate_locale(locale, sizes, seed) for locale in locales}
    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for locale, splits in generated.items():
        counts[locale] = {split: write_examples(out_dir / locale / f"{split}.jsonl", examples)
                          for split, examples in splits.items()}
    return counts


def corpus_stats(locale: str) -> dict[str, int]:
    """Label-space size of one locale's templates: scenarios, intents, entity types, templates, fillers."""
    data = load_locale(locale)
    types = {kind for items in data.templates.values() for t in items for kind in SLOT.findall(t)}
    return {
        "scenarios": len({split_intent(i)[0] for i in data.templates}),
        "intents": len(data.templates),
        "entity_types": len(types),
        "templates": sum(len(t) for t in data.templates.values()),
        "fillers": sum(len(f) for f in data.fillers.values()),
    }
