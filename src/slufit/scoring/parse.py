"""Turn a model's generated text into a SLURP prediction, tolerantly and without ever raising.

Models trained on the one-line JSON target (slufit.target) mostly emit it verbatim, but not
always: they wrap it in prose or code fences, use Python-style quotes, leave trailing commas,
stop mid-object at the token limit, or write entities as `{"date": "tuesday"}`. Each of those is
read here. What cannot be read becomes the empty prediction (scenario and action "", so the
intent is wrong, and no entities) with ok=False, which the caller counts as a parse failure.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from typing import Any

# Generated outputs are a few hundred characters, nested 3 deep: bound the work done on junk.
MAX_CHARS = 10_000
MAX_STARTS = 32  # `{` positions tried
MAX_DEPTH = 16
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_JSON_LITERALS = {"true": "True", "false": "False", "null": "None"}
_LITERAL_WORD = re.compile(r"\b(true|false|null)\b")
_SPACES = re.compile(r"\s+")
_LABEL_KEYS = ("scenario", "action", "intent")
_TYPE_KEYS = ("type", "slot", "entity", "label")
_FILLER_KEYS = ("filler", "value", "text", "span")


def empty_prediction() -> dict[str, Any]:
    return {"scenario": "", "action": "", "entities": []}


def _scan(text: str, start: int) -> tuple[int, list[str], str]:
    """Scan from the `{` at `start`: (end of the balanced object or -1, closers still open, open quote)."""
    stack: list[str] = []
    quote = ""
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch == '"' or (ch == "'" and not (i > 0 and text[i - 1].isalnum())):
            quote = ch  # an apostrophe inside a word (what's) does not open a string
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            if len(stack) > MAX_DEPTH:
                return -1, [], ""
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                return -1, [], ""  # mismatched: not an object
            stack.pop()
            if not stack:
                return i + 1, [], ""
    return -1, stack, quote


def _close(fragment: str) -> str:
    """Close a generation cut off mid-object: end the open string, then the open brackets."""
    _, stack, quote = _scan(fragment, 0)
    return fragment + quote + "".join(reversed(stack))


def _objects(text: str) -> list[str]:
    """Brace-balanced `{...}` substrings (quotes respected), outer before inner; when none is
    found, the object cut off at the end of the text, closed, and closed after its last comma."""
    found: list[str] = []
    start = text.find("{")
    truncated = -1
    for _ in range(MAX_STARTS):
        if start < 0:
            break
        end, stack, _ = _scan(text, start)
        if end > 0:
            found.append(text[start:end])
        elif stack and truncated < 0:
            truncated = start
        start = text.find("{", start + 1)
    if not found and truncated >= 0:
        tail = text[truncated:].rstrip()
        found.append(_close(tail))
        if "," in tail:
            found.append(_close(tail[: tail.rfind(",")]))
    return found


def _load(candidate: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes, True/None)."""
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            return json.loads(attempt)
        except (ValueError, RecursionError):
            pass
    # JSON literals are rewritten only if the text fails as is: "null" may be inside a filler.
    for attempt in (candidate, _LITERAL_WORD.sub(lambda m: _JSON_LITERALS[m.group(1)], candidate)):
        try:
            with warnings.catch_warnings():  # "invalid escape sequence" warnings on junk are noise
                warnings.simplefilter("ignore")
                return ast.literal_eval(attempt)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return None


def _string(value: Any) -> str:
    """A label value as a string: lists give their first item (or are joined, for fillers)."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if value is None or isinstance(value, (dict, bool)):
        return ""
    return _SPACES.sub(" ", str(value)).strip()


def _filler(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = " ".join(_filler(v) for v in value)
    return _string(value).lower()


def _pick(obj: dict, names: tuple[str, ...]) -> Any:
    return next((obj[n] for n in names if n in obj), None)


def _entities(value: Any) -> list[dict[str, str]]:
    """Entities from the target form or from looser ones: a {type: filler} mapping (a list value
    gives one entity per item), single-key mappings, or [type, filler] pairs."""
    out: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        value = [value] if any(k in value for k in _TYPE_KEYS) else [{k: v} for k, v in value.items()]
    if not isinstance(value, list):
        return []
    for entity in value:
        if isinstance(entity, dict):
            entity = {str(k).lower(): v for k, v in entity.items()}
            etype = _pick(entity, _TYPE_KEYS)
            if etype is not None:
                filler = _pick(entity, _FILLER_KEYS)
                if filler is not None:  # a type with no filler (cut off) is no entity
                    out.append((etype, filler))
            else:
                for k, v in entity.items():
                    out.extend((k, item) for item in (v if isinstance(v, list) else [v]))
        elif isinstance(entity, (list, tuple)) and len(entity) == 2:
            out.append((entity[0], entity[1]))
    entities = [{"type": _string(t).lower(), "filler": _filler(f)} for t, f in out]
    return [e for e in entities if e["type"]]


def _prediction(obj: Any) -> dict[str, Any] | None:
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        return None
    obj = {str(k).strip().lower(): v for k, v in obj.items()}
    if not any(k in obj for k in _LABEL_KEYS):
        return None
    scenario, action = _string(obj.get("scenario")).lower(), _string(obj.get("action")).lower()
    intent = _string(obj.get("intent")).lower()
    if intent and "_" in intent and not (scenario and action):
        # SLURP scenarios have no underscore; actions may (volume_mute).
        head, tail = intent.split("_", 1)
        scenario, action = scenario or head, action or tail
    prediction: dict[str, Any] = {"scenario": scenario, "action": action, "entities": _entities(obj.get("entities"))}
    if "transcript" in obj:
        prediction["transcript"] = _string(obj["transcript"])
    return prediction


def parse_prediction(text: Any) -> tuple[dict[str, Any], bool]:
    """(prediction, ok) from generated text; never raises. The prediction has `scenario`,
    `action`, `entities` (fillers lowercased) and `transcript` when the model wrote one."""
    try:
        if not isinstance(text, str):
            return empty_prediction(), False
        for candidate in _objects(text[:MAX_CHARS]):
            prediction = _prediction(_load(candidate))
            if prediction is not None:
                return prediction, True
    except Exception:  # noqa: BLE001 - the contract is "never raises"; junk input is a parse failure
        pass
    return empty_prediction(), False
