"""Gold labels and prediction files, keyed the way the official SLURP toolkit keys them.

A gold set is a list of utterances (one label each) and a list of scored items. In audio mode
each recording of an utterance is its own item, keyed by its file; in text mode the utterance is
one item, keyed by its id. Gold files are either raw SLURP jsonl (`slurp_id`, `tokens`,
`entities` with token `span`s) or canonical slufit JSONL (`slufit.data.example`).

Keys:
- raw SLURP: audio `recordings[].file`, text `str(slurp_id)` (as the toolkit).
- canonical: audio the recording `path` and its file name; text the example `id`, and `<n>`
  when the id is `slurp-<n>` (so official `slurp_id` prediction lines match).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from slufit.data.example import Example, read_examples
from slufit.errors import DataError
from slufit.files import read_jsonl

_SLURP_ID = re.compile(r"^slurp-(\d+)$")


@dataclass
class GoldSet:
    """Utterance labels plus the items to score. `items[i] = (keys, utterance index)`; a
    prediction matches an item under any of its keys (the first is its name)."""

    mode: str  # "audio" or "text"
    labels: list[dict[str, Any]] = field(default_factory=list)
    locales: list[str] = field(default_factory=list)
    # Each utterance's transcript (what was said): where predicted fillers should come from.
    texts: list[str] = field(default_factory=list)
    items: list[tuple[tuple[str, ...], int]] = field(default_factory=list)


def _label(scenario: str, action: str, entities: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"scenario": scenario, "action": action,
            "entities": [{"type": t, "filler": f} for t, f in entities]}


def _slurp_label(obj: dict[str, Any]) -> dict[str, Any]:
    """Gold label of a raw SLURP line: fillers are the lowercased token surfaces of the span,
    joined by single spaces (as the toolkit's `release2prediction`)."""
    surfaces = [t["surface"] for t in obj["tokens"]]
    entities = [(e["type"], " ".join(surfaces[i].lower() for i in e["span"])) for e in obj["entities"]]
    return _label(obj["scenario"], obj["action"], entities)


def _read_slurp(path: Path, mode: str) -> GoldSet:
    gold = GoldSet(mode)
    seen: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        try:
            label = _slurp_label(obj)
            keys = [str(obj["slurp_id"])] if mode == "text" else [r["file"] for r in obj["recordings"]]
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise DataError(f"{path}:{number}: not a SLURP example ({type(err).__name__}: {err})") from None
        for key in keys:
            if key in seen:
                raise DataError(f"{path}:{number}: duplicate key {key!r} (first on line {seen[key]})")
            seen[key] = number
            gold.items.append(((key,), len(gold.labels)))
        gold.labels.append(label)
        gold.locales.append("en-US")
        gold.texts.append(str(obj.get("sentence", "")))
    return gold


def gold_from_examples(examples: Iterable[Example], mode: str) -> GoldSet:
    """Gold set of canonical examples, in "audio" (one item per recording) or "text" mode."""
    if mode not in ("audio", "text"):
        raise ValueError(f"mode must be 'audio' or 'text', got {mode!r}")
    gold = GoldSet(mode)
    examples = list(examples)
    # A file name is a key only where it names one recording (a/x.flac and b/x.flac: paths only).
    names = Counter(os.path.basename(r.path) for e in examples for r in e.recordings)
    for example in examples:
        if mode == "text":
            keys = [(example.id,) + ((m.group(1),) if (m := _SLURP_ID.match(example.id)) else ())]
        else:
            keys = [(r.path,) + ((os.path.basename(r.path),) if names[os.path.basename(r.path)] == 1 else ())
                    for r in example.recordings]
        for item_keys in keys:
            gold.items.append((tuple(dict.fromkeys(item_keys)), len(gold.labels)))
        gold.labels.append(_label(example.scenario, example.action, ((e.type, e.filler) for e in example.entities)))
        gold.locales.append(example.locale)
        gold.texts.append(example.text)
    return gold


def _is_slurp_file(path: Path) -> bool:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    return False  # let the canonical reader report the bad line
                return isinstance(obj, dict) and "slurp_id" in obj and "tokens" in obj
    return False


def read_gold(path: str | os.PathLike, text: bool = False) -> GoldSet:
    """Read raw SLURP jsonl or canonical JSONL (detected from the first line) as a gold set."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    mode = "text" if text else "audio"
    if _is_slurp_file(path):
        return _read_slurp(path, mode)
    return gold_from_examples(read_examples(path), mode)


def _check_prediction(obj: Any) -> str | None:
    """Why `obj` is not a valid prediction line, or None."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    for name in ("scenario", "action"):
        if not isinstance(obj.get(name), str):
            return f"field '{name}' must be a string"
    entities = obj.get("entities")
    if not isinstance(entities, list):
        return "field 'entities' must be a list"
    for i, e in enumerate(entities):
        if not isinstance(e, dict) or not isinstance(e.get("type"), str) or not isinstance(e.get("filler"), str):
            return f"entities[{i}] must be an object with string 'type' and 'filler'"
    return None


def read_predictions(path: str | os.PathLike, text: bool = False) -> dict[str, dict[str, Any]]:
    """Read SLURP prediction lines keyed by `file` (audio) or `slurp_id` (text; `id` also accepted).

    Fillers are kept as written: the toolkit compares them exactly. A key seen twice keeps its
    last line, as the toolkit does. A bad line raises DataError naming the file and line.
    """
    key_names = ("slurp_id", "id") if text else ("file",)
    out: dict[str, dict[str, Any]] = {}
    for number, obj in read_jsonl(path):
        problem = _check_prediction(obj)
        key = next((obj[k] for k in key_names if k in obj), None)
        if problem is None and not isinstance(key, (str, int)):
            problem = f"missing key field {' or '.join(repr(k) for k in key_names)}"
        if problem:
            hint = " (use --load-gold for slurp_id predictions)" if not text and "slurp_id" in obj else ""
            raise DataError(f"{path}:{number}: {problem}{hint}")
        out[str(key)] = {"scenario": obj["scenario"], "action": obj["action"],
                         "entities": [{"type": e["type"], "filler": e["filler"]} for e in obj["entities"]]}
    return out
