"""The canonical example: one SLU utterance, its labels and its recordings.

One JSON object per line (see DESIGN.md, "Canonical example"):

    {"id": "slurp-9054", "locale": "en-US", "text": "event reminder mona tuesday",
     "scenario": "calendar", "action": "set", "intent": "calendar_set",
     "entities": [{"type": "event_name", "filler": "mona"}, {"type": "date", "filler": "tuesday"}],
     "recordings": [{"path": "audio/slurp/audio-1497872916-headset.flac", "speaker": "UNK"}],
     "source": "slurp"}

Every importer produces these, every later stage reads them. Reading validates
each line and fails with `FILE:LINE: reason`; writing is atomic.
Relative recording paths are relative to the folder of the JSONL file that
lists them (`resolve_audio`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from slufit.errors import DataError
from slufit.files import atomic_open, read_jsonl

LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")


@dataclass(frozen=True)
class Entity:
    type: str
    filler: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "filler": self.filler}


@dataclass(frozen=True)
class Recording:
    path: str
    speaker: str = "UNK"
    # Seconds of audio, when known (synthesis and importers fill it; stats use it).
    duration: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "speaker": self.speaker}
        if self.duration is not None:
            out["duration"] = round(self.duration, 3)
        return out


@dataclass(frozen=True)
class Example:
    id: str
    locale: str
    text: str
    scenario: str
    action: str
    intent: str
    entities: tuple[Entity, ...] = ()
    recordings: tuple[Recording, ...] = ()
    source: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "locale": self.locale,
            "text": self.text,
            "scenario": self.scenario,
            "action": self.action,
            "intent": self.intent,
            "entities": [e.to_dict() for e in self.entities],
            "recordings": [r.to_dict() for r in self.recordings],
            "source": self.source,
        }

    def label(self) -> dict[str, Any]:
        """The SLURP-style prediction this example should produce (the model target)."""
        return {"scenario": self.scenario, "action": self.action, "entities": [e.to_dict() for e in self.entities]}

    def with_recordings(self, recordings: Iterable[Recording]) -> "Example":
        return Example(**{**self.__dict__, "recordings": tuple(recordings)})

    @staticmethod
    def from_dict(obj: Any) -> "Example":
        """Build and validate an example; raises ValueError with the reason."""
        return _validate(obj)


_STRING_FIELDS = ("id", "locale", "text", "scenario", "action", "intent")
_KNOWN_FIELDS = set(_STRING_FIELDS) | {"entities", "recordings", "source"}


def _validate(obj: Any) -> Example:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    for name in _STRING_FIELDS:
        if name not in obj:
            raise ValueError(f"missing field '{name}'")
        if not isinstance(obj[name], str):
            raise ValueError(f"field '{name}' must be a string, got {type(obj[name]).__name__}")
    for name in ("id", "text", "scenario", "action"):
        if not obj[name].strip():
            raise ValueError(f"field '{name}' is empty")
    if not LOCALE_PATTERN.match(obj["locale"]):
        raise ValueError(f"field 'locale' must look like 'en-US', got {obj['locale']!r}")
    expected_intent = f"{obj['scenario']}_{obj['action']}"
    if obj["intent"] != expected_intent:
        raise ValueError(f"field 'intent' is {obj['intent']!r} but scenario_action is {expected_intent!r}")
    source = obj.get("source", "unknown")
    if not isinstance(source, str):
        raise ValueError(f"field 'source' must be a string, got {type(source).__name__}")
    return Example(
        id=obj["id"], locale=obj["locale"], text=obj["text"], scenario=obj["scenario"],
        action=obj["action"], intent=obj["intent"],
        entities=tuple(_entity(e, i) for i, e in enumerate(_list(obj, "entities"))),
        recordings=tuple(_recording(r, i) for i, r in enumerate(_list(obj, "recordings"))),
        source=source,
    )


def _list(obj: dict, name: str) -> list:
    value = obj.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"field '{name}' must be a list, got {type(value).__name__}")
    return value


def _entity(obj: Any, index: int) -> Entity:
    where = f"entities[{index}]"
    if not isinstance(obj, dict) or set(obj) != {"type", "filler"}:
        raise ValueError(f"{where} must be an object with exactly 'type' and 'filler'")
    if not isinstance(obj["type"], str) or not obj["type"].strip():
        raise ValueError(f"{where}.type must be a non-empty string")
    if not isinstance(obj["filler"], str):
        raise ValueError(f"{where}.filler must be a string, got {type(obj['filler']).__name__}")
    if not obj["filler"].strip():
        # The scorer matches fillers exactly; an empty one can never be predicted right.
        raise ValueError(f"{where}.filler is empty")
    if obj["filler"] != obj["filler"].lower():
        raise ValueError(f"{where}.filler must be lowercase, got {obj['filler']!r}")
    return Entity(obj["type"], obj["filler"])


def _recording(obj: Any, index: int) -> Recording:
    where = f"recordings[{index}]"
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be an object")
    unknown = sorted(set(obj) - {"path", "speaker", "duration"})
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {', '.join(unknown)}")
    if not isinstance(obj.get("path"), str) or not obj["path"]:
        raise ValueError(f"{where}.path must be a non-empty string")
    speaker = obj.get("speaker", "UNK")
    if not isinstance(speaker, str):
        raise ValueError(f"{where}.speaker must be a string")
    duration = obj.get("duration")
    if duration is not None and (
        not isinstance(duration, (int, float)) or isinstance(duration, bool) or not math.isfinite(duration) or duration < 0
    ):
        raise ValueError(f"{where}.duration must be a non-negative number")
    return Recording(obj["path"], speaker, None if duration is None else float(duration))


def read_examples(path: str | os.PathLike) -> list[Example]:
    """Read and validate a canonical JSONL file. Blank lines are skipped.

    Raises DataError("FILE:LINE: reason") on the first bad line, and checks that ids are unique.
    """
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        try:
            example = Example.from_dict(obj)
        except ValueError as err:
            raise DataError(f"{path}:{number}: {err}") from None
        if example.id in seen:
            raise DataError(f"{path}:{number}: duplicate id {example.id!r} (first on line {seen[example.id]})")
        seen[example.id] = number
        examples.append(example)
    return examples


def write_examples(path: str | os.PathLike, examples: Iterable[Example]) -> int:
    """Atomically write examples as JSONL; returns how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for example in examples:
            handle.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def resolve_audio(recording: Recording, data_file: str | os.PathLike) -> Path:
    """Absolute path of a recording: relative paths are relative to the JSONL file's folder."""
    path = Path(recording.path)
    return path if path.is_absolute() else Path(data_file).resolve().parent / path
