"""The composed model's compact target: a SLURP label as a short line a BPE tokenizer reads well.

    calendar_set | event_name=mona | date=tuesday

The intent (`scenario_action`) first, then one `type=filler` per entity, in the example's
order, separated by ` | `. It costs about a third of the tokens of the study's JSON target
(the issue's measure: ~33 tokens per SLURP item with the end token) and is plain words
to the LLM. `decode` is tolerant: whatever cannot be read gives empty labels or drops an
entity, and the scorer counts it wrong.
"""

from __future__ import annotations

from typing import Any

from slufit.data.example import Example

SEPARATOR = " | "


def compact(example: Example) -> str:
    """The target line of `example` (fillers lowercase, whitespace collapsed)."""
    parts = [example.intent] + [f"{e.type}={' '.join(e.filler.split())}" for e in example.entities]
    return SEPARATOR.join(parts)


def decode(text: str) -> dict[str, Any]:
    """A SLURP prediction from a generated line (see the module docstring)."""
    parts = [p.strip() for p in text.strip().splitlines()[0].split("|")] if text.strip() else []
    scenario, action, entities = "", "", []
    if parts and "=" not in parts[0]:
        scenario, _, action = parts[0].partition("_")
        parts = parts[1:]
    for part in parts:
        slot, sep, filler = part.partition("=")
        filler = " ".join(filler.lower().split())
        if sep and slot.strip() and filler:
            entities.append({"type": slot.strip(), "filler": filler})
    return {"scenario": scenario, "action": action, "entities": entities}


def snap_fillers(prediction: dict[str, Any], transcript: str, cutoff: float = 60.0) -> dict[str, Any]:
    """Copy constraint for text input: each predicted filler that is not a run of the transcript's words becomes
    the run most like it (rapidfuzz ratio >= `cutoff`, runs of up to two words more than the filler), or is
    kept as generated. Fillers come from what was said (issue 21); the scorer's verbatim share measures it."""
    from rapidfuzz import fuzz

    from slufit.scoring.score import verbatim

    words = transcript.lower().split()
    entities = []
    for entity in prediction["entities"]:
        filler = entity["filler"]
        if words and not verbatim(filler, transcript):
            size = len(filler.split())
            runs = {" ".join(words[i:i + n]) for n in range(max(1, size - 1), size + 3)
                    for i in range(len(words) - n + 1)}
            best = max(runs, key=lambda run: (fuzz.ratio(run, filler), -abs(len(run) - len(filler))), default=None)
            if best is not None and fuzz.ratio(best, filler) >= cutoff:
                filler = best
        entities.append({**entity, "filler": filler})
    return {**prediction, "entities": entities}
