"""Speech budgets: which training examples may use their speech.

For one seed and strategy, every example gets a place in one fixed order and a
budget of K examples is the first K of that order, so budgets are nested: the
2 % set lies inside the 5 % set, inside the 10 % set, ... up to 100 %.

- `random`: a seeded shuffle.
- `stratified`: first one example of every intent (intents in a seeded order),
  then the rest ordered so that each intent fills in proportionally to its size
  (systematic sampling with jitter). A budget of at least as many examples as
  there are intents therefore covers every intent.

Manifest (JSON): {"seed", "strategy", "fraction", "count", "ids": [...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from slufit.data.example import Example, read_examples, resolve_audio
from slufit.errors import DataError, SlufitError
from slufit.files import write_json

STRATEGIES = ("random", "stratified")
KEYS = ("seed", "strategy", "fraction", "count", "ids")


def budget_order(examples: Sequence[Example], strategy: str = "stratified", seed: int = 0) -> list[str]:
    """All example ids, in the order in which budgets take them."""
    if strategy not in STRATEGIES:
        raise SlufitError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    ids = [e.id for e in examples]
    rng = random.Random(f"slufit-budget:{strategy}:{seed}")
    if strategy == "random":
        rng.shuffle(ids)
        return ids
    by_intent: dict[str, list[str]] = defaultdict(list)
    for e in examples:
        by_intent[e.intent].append(e.id)
    keyed: list[tuple[int, float, str]] = []
    for intent in sorted(by_intent):
        members = by_intent[intent]
        rng.shuffle(members)
        n = len(members)
        keyed.append((0, rng.random(), members[0]))
        keyed.extend((1, (j + rng.random()) / n, member) for j, member in enumerate(members[1:], start=1))
    return [member for _, _, member in sorted(keyed)]


def draw_budget(examples: Sequence[Example], fraction: float | None = None, count: int | None = None,
                strategy: str = "stratified", seed: int = 0) -> dict[str, Any]:
    """The manifest of a budget of `fraction` (0-1) of the examples or exactly `count` examples."""
    if (fraction is None) == (count is None):
        raise SlufitError("give exactly one of fraction or count")
    total = len(examples)
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise SlufitError(f"fraction must be between 0 and 1 (0 to 100 %), got {fraction:g}")
        k = round(fraction * total)
    else:
        if count < 0 or count > total:
            raise SlufitError(f"count must be between 0 and {total} (the number of examples), got {count}")
        k = count
    ids = budget_order(examples, strategy, seed)[:k]
    return {"seed": seed, "strategy": strategy, "fraction": fraction, "count": k, "ids": ids}


def write_budget(path: str | os.PathLike, manifest: dict[str, Any]) -> None:
    write_json(path, manifest)


def read_budget(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a manifest; DataError naming the file and the field on a problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a JSON budget manifest ({err})") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: a budget manifest is a JSON object")
    missing = [k for k in KEYS if k not in manifest]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)}")
    ids = manifest["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError(f"{path}: field 'ids' must be a list of strings")
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: field 'ids' has duplicates")
    return manifest


def audio_minutes(examples: Sequence[Example], data_file: str | os.PathLike) -> tuple[float, int]:
    """Minutes of audio in the examples' recordings, and how many recordings have an unknown length."""
    import soundfile as sf

    seconds, unknown = 0.0, 0
    for e in examples:
        for r in e.recordings:
            if r.duration is not None:
                seconds += r.duration
                continue
            try:
                seconds += sf.info(str(resolve_audio(r, data_file))).duration
            except Exception:  # missing or unreadable file: reported as unknown, not fatal here
                unknown += 1
    return seconds / 60, unknown


def _fraction(text: str) -> float:
    """`0.05`, `5%` and `5` all mean 5 %; `1` means 100 %."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return value / 100 if text.strip().endswith("%") or value > 1 else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="canonical JSONL of the training examples")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--fraction", type=_fraction,
                      help="share of the examples: 0-1 (0.05), or a percentage (5%% or 5: values above 1)")
    size.add_argument("--count", type=int, help="exact number of examples (e.g. 115)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="stratified", help="default stratified")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="manifest file to write (JSON)")


def run(args: argparse.Namespace) -> int:
    examples = read_examples(args.data)
    try:
        manifest = draw_budget(examples, fraction=args.fraction, count=args.count, strategy=args.strategy,
                               seed=args.seed)
    except SlufitError as err:
        raise SlufitError(f"{args.data}: {err}") from None
    write_budget(args.out, manifest)
    chosen = set(manifest["ids"])
    picked = [e for e in examples if e.id in chosen]
    minutes, unknown = audio_minutes(picked, args.data)
    intents = len({e.intent for e in picked})
    n_recordings = sum(len(e.recordings) for e in picked)
    if n_recordings == 0:
        audio = "no recordings yet (synthesize them with slufit speech synth --ids)"
    elif unknown == n_recordings:
        audio = f"{n_recordings} recordings of unknown length (files not found)"
    else:
        audio = f"{minutes:.1f} audio minutes in {n_recordings} recordings"
        audio += f" ({unknown} of unknown length)" if unknown else ""
    print(f"{args.out}: {len(picked)} of {len(examples)} utterances, {intents} of "
          f"{len({e.intent for e in examples})} intents, {audio}")
    return 0
