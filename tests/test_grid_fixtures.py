"""Run folders written by the tests themselves: made-up but consistent metrics, predictions and gold data."""

from __future__ import annotations

import json
from pathlib import Path

from slufit.data.example import Entity, Example, Recording, write_examples
from slufit.files import write_json
from slufit.grid.spec import RUN_FILE, RunSpec

EVAL = "test-speech"


def gold_examples(n: int = 40) -> list[Example]:
    scenarios = [("alarm", "set"), ("weather", "query"), ("music", "play"), ("calendar", "set")]
    out = []
    for i in range(n):
        scenario, action = scenarios[i % len(scenarios)]
        out.append(Example(id=f"ex{i}", locale="en-US", text=f"utterance number {i}", scenario=scenario, action=action,
                           intent=f"{scenario}_{action}", entities=(Entity("date", f"day {i}"),),
                           recordings=(Recording(f"audio/ex{i}.flac", "spk1"),), source="test"))
    return out


def predictions(examples: list[Example], correct: int) -> list[dict]:
    """SLURP prediction lines: the first `correct` examples right, the rest wrong in intent and entity."""
    lines = []
    for i, e in enumerate(examples):
        if i < correct:
            lines.append({"file": e.recordings[0].path, **e.label()})
        else:
            lines.append({"file": e.recordings[0].path, "scenario": "iot", "action": "hue_lightoff",
                          "entities": [{"type": "place_name", "filler": "nowhere"}]})
    return lines


def write_run(grid_dir: Path, run: RunSpec, intent: float, slu: float, entity: float | None = None,
              done: bool = True, seconds: float = 12.0, gold: Path | None = None,
              prediction_lines: list[dict] | None = None, evals: dict[str, tuple[float, float]] | None = None,
              per_locale: dict[str, tuple[float, float]] | None = None) -> Path:
    """A finished run folder with the given scores (fractions in [0, 1]) on eval set EVAL (and `evals`)."""
    run_dir = grid_dir / run.name
    (run_dir / "eval" / EVAL).mkdir(parents=True, exist_ok=True)
    info = run.to_dict()
    if gold is not None:
        info["test_files"] = [str(gold)]
    if not (run_dir / RUN_FILE).exists():  # the grid runner writes it before training
        write_json(run_dir / RUN_FILE, info)
    write_json(run_dir / "version.json", {"slufit": "0.1.0", "git": "abc1234", "python": "3.11", "torch": "2.13.0",
                                          "transformers": "5.24"})
    entity = slu - 0.05 if entity is None else entity
    metrics = {EVAL: _metrics(intent, slu, entity)}
    if per_locale:
        metrics[EVAL]["per_locale"] = {loc: _metrics(i, s, s) for loc, (i, s) in per_locale.items()}
    for name, (i, s) in (evals or {}).items():
        metrics[name] = _metrics(i, s, s)
    if prediction_lines is not None:
        with open(run_dir / "eval" / EVAL / "predictions.jsonl", "w", encoding="utf-8") as handle:
            for line in prediction_lines:
                handle.write(json.dumps(line) + "\n")
    write_json(run_dir / "eval" / EVAL / "metrics.json", metrics[EVAL])
    if done:
        write_json(run_dir / "summary.json", {"done": True, "train_seconds": seconds, "metrics": metrics})
    return run_dir


def _metrics(intent: float, slu: float, entity: float) -> dict:
    prf = lambda v: {"precision": v, "recall": v, "f1": v}  # noqa: E731
    return {"scenario": prf(intent), "action": prf(intent), "intent": prf(intent), "entities": prf(entity),
            "entities_word": prf(slu), "entities_char": prf(slu), "slu_f1": prf(slu), "n": 40, "missing": 0,
            "ci": {"level": 0.95, "intent_accuracy": {"low": intent - 0.02, "high": intent + 0.02},
                   "slu_f1": {"low": slu - 0.03, "high": slu + 0.03}}}


def write_gold(path: Path, examples: list[Example]) -> Path:
    write_examples(path, examples)
    return path
