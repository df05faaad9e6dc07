"""What every importer shares: the `[type : filler]` annotation parser, intent splitting,
validated example building with FILE:LINE errors, and recording paths with a missing-audio tally.

An importer converts everything in memory first and writes nothing until the whole
source has validated, so a bad line never leaves a partial output behind.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from slufit.data.audio import duration_seconds
from slufit.data.example import Example, Recording
from slufit.errors import DataError
from slufit.files import read_jsonl  # noqa: F401  (the importers' JSONL reader, re-exported)

# The opening of an annotated span, e.g. "[date : " in "[date : next tuesday]".
_SPAN_OPEN = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*")


@dataclass
class Imported:
    """An importer's result: examples per partition ("" when the source has no partitions)."""

    partitions: dict[str, list[Example]]
    recordings: int = 0
    missing_audio: list[str] = field(default_factory=list)  # missing paths or unusable-audio errors, in source order
    notes: list[str] = field(default_factory=list)  # things the user should know, printed after the import


def normalize_filler(text: str) -> str:
    """Entity fillers are compared exactly by the scorer: lowercase, single spaces."""
    return " ".join(text.lower().split())


def parse_annotation(annotated: str) -> tuple[str, list[dict[str, str]]]:
    """Split MASSIVE/SLURP bracket annotation into (plain text, entities).

    "wake me [time : at five am] [date : tomorrow]" -> ("wake me at five am tomorrow",
    [{"type": "time", "filler": "at five am"}, {"type": "date", "filler": "tomorrow"}]).
    Nested spans give one entity each (the outer filler covers the inner text), in order of
    their opening bracket. Raises ValueError on unbalanced brackets or a span without `type :`.
    """
    plain: list[str] = []
    open_spans: list[tuple[int, str, int]] = []  # (entity slot, type, start in plain)
    found: list[dict[str, str] | None] = []
    i = 0
    while i < len(annotated):
        char = annotated[i]
        if char == "[":
            match = _SPAN_OPEN.match(annotated, i)
            if not match:
                raise ValueError(f"'[' at column {i + 1} is not followed by 'type :'")
            open_spans.append((len(found), match.group(1).strip(), len("".join(plain))))
            found.append(None)
            i = match.end()
            continue
        if char == "]":
            if not open_spans:
                raise ValueError(f"']' at column {i + 1} closes no span")
            slot, type_, start = open_spans.pop()
            filler = normalize_filler("".join(plain)[start:])
            if not filler:
                raise ValueError(f"span '{type_}' ending at column {i + 1} is empty")
            found[slot] = {"type": type_, "filler": filler}
        else:
            plain.append(char)
        i += 1
    if open_spans:
        raise ValueError(f"span '{open_spans[-1][1]}' is never closed with ']'")
    return " ".join("".join(plain).split()), [e for e in found if e is not None]


def split_intent(intent: str) -> tuple[str, str]:
    """'iot_hue_lightoff' -> ('iot', 'hue_lightoff'): SLURP/MASSIVE scenarios have no underscore."""
    scenario, sep, action = intent.partition("_")
    if not sep or not scenario or not action:
        raise ValueError(f"intent {intent!r} is not scenario_action (e.g. 'alarm_set')")
    return scenario, action


def build_example(fields: dict[str, Any], where: str) -> Example:
    """Validate through Example.from_dict; a failure becomes DataError('FILE:LINE: reason')."""
    try:
        return Example.from_dict(fields)
    except ValueError as err:
        raise DataError(f"{where}: {err}") from None




def read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each CSV row, with the header's column names as keys."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                if None in row:
                    raise DataError(f"{path}:{reader.line_num}: more cells than header columns")
                yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason})") from None
    except csv.Error as err:
        raise DataError(f"{path}: bad CSV ({err})") from None


class AudioLocator:
    """Turns a source's audio references into recordings stored relative to the output folder.

    A relative reference is looked up under each audio root in turn (the first that has it
    wins); `resolve_audio` later finds it again from the output JSONL's folder.
    """

    def __init__(self, out_dir: Path, roots: list[Path]):
        self.out_dir = out_dir.resolve()
        self.roots = [root.resolve() for root in roots]
        self.count = 0
        self.missing: list[str] = []

    def recording(self, reference: str, speaker: str = "UNK") -> Recording:
        self.count += 1
        ref = Path(reference)
        candidates = [ref] if ref.is_absolute() else [root / ref for root in self.roots]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            self.missing.append(str(candidates[0]))
        path = found or candidates[0]
        return Recording(_relative(path, self.out_dir), speaker, duration_seconds(path) if found else None)


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path, folder)).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return path.as_posix()
