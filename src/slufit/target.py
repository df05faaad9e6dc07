"""The model's task: the instruction it is given and the one-line JSON it must produce.

DESIGN.md, "Model target": the same keys as a SLURP prediction,
    {"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"}]}
optionally with "transcript" first, so that speech is transcribed, then understood.
Every adapter uses these; `slufit.scoring.parse` turns generated text back into a prediction.
"""

from __future__ import annotations

import json

from slufit.data.example import Example

INSTRUCTION = (
    "Understand the user's request. Answer with one line of JSON only: "
    '{"scenario": ..., "action": ..., "entities": [{"type": ..., "filler": ...}]} '
    "using SLURP labels and lowercase fillers."
)
INSTRUCTION_TRANSCRIPT_FIRST = (
    "Transcribe the user's request, then understand it. Answer with one line of JSON only: "
    '{"transcript": ..., "scenario": ..., "action": ..., "entities": [{"type": ..., "filler": ...}]} '
    "using SLURP labels and lowercase fillers."
)
# Speech -> transcript (rehearsal items: slufit.models.lalm.adapter.LALMAdapter.collate_rehearsal).
TRANSCRIBE = "Write down what the user said."


def instruction(transcript_first: bool = False) -> str:
    return INSTRUCTION_TRANSCRIPT_FIRST if transcript_first else INSTRUCTION


def format_target(example: Example, transcript_first: bool = False) -> str:
    """The exact text the model is trained to generate for `example`."""
    label = example.label()
    if transcript_first:
        label = {"transcript": example.text.lower(), **label}
    return json.dumps(label, ensure_ascii=False)


def transcript_prefix(text: str) -> str:
    """The opening of a transcript-first target up to where the labels start:
    '{"transcript": "...", "scenario": "'. Rehearsal items of a transcript-first model are trained on this
    alone: it holds no label (none is known for them), only the transcript and the fixed JSON around it."""
    return json.dumps({"transcript": text.lower()}, ensure_ascii=False)[:-1] + ', "scenario": "'
