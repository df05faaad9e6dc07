"""Gather run folders into one results table, reading the run folders only.

Each run folder (docs/architecture.md, "Run folder") holds `summary.json`
with the metrics of every eval set, and `grid_run.json` with its grid
coordinates (scheme, fraction, seed, locales). Nothing else is needed, so
folders trained on other machines can be copied into a grid folder and
gathered. All scores here are percentages (0-100), as in the study's tables.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slufit.errors import SlufitError
from slufit.files import atomic_open, read_json
from slufit.grid.spec import RUN_FILE, RunSpec

# The three headline metrics: (column name, key in metrics.json, key of its CI in metrics["ci"]).
METRICS = (
    ("intent_acc", "intent", ("intent_acc", "intent_accuracy", "intent")),
    ("entity_f1", "entities", ("entity_f1", "entities", "entities_f1")),
    ("slu_f1", "slu_f1", ("slu_f1",)),
)
COLUMNS = [
    "name", "scheme", "fraction", "seed", "locale", "source_locale", "target_speech", "eval", "n",
    "intent_acc", "intent_acc_lo", "intent_acc_hi", "entity_f1", "entity_f1_lo", "entity_f1_hi",
    "slu_f1", "slu_f1_lo", "slu_f1_hi", "parse_failures", "train_seconds",
]


@dataclass
class EvalScores:
    """The headline numbers of one eval set of one run, in percent; CIs may be missing (None)."""

    n: int | None = None
    intent_acc: float | None = None
    intent_acc_lo: float | None = None
    intent_acc_hi: float | None = None
    entity_f1: float | None = None
    entity_f1_lo: float | None = None
    entity_f1_hi: float | None = None
    slu_f1: float | None = None
    slu_f1_lo: float | None = None
    slu_f1_hi: float | None = None
    parse_failures: int | None = None


@dataclass
class RunResult:
    """A finished run: where it is, its grid coordinates, and the scores of each eval set."""

    run: RunSpec
    run_dir: Path
    train_seconds: float | None
    evals: dict[str, EvalScores] = field(default_factory=dict)
    # The same eval sets split by locale (metrics.json's `per_locale`): {(eval name, locale): scores}.
    locale_evals: dict[tuple[str, str], EvalScores] = field(default_factory=dict)

    def scores(self, eval_name: str | None, locale: str | None = None) -> EvalScores | None:
        """Scores of an eval set; with `locale`, of that locale's part when the set holds several."""
        if not eval_name:
            return None
        if locale is not None and (eval_name, locale) in self.locale_evals:
            return self.locale_evals[(eval_name, locale)]
        return self.evals.get(eval_name)

    def main_scores(self, eval_name: str | None) -> EvalScores | None:
        """What the tables show: the eval set restricted to the run's (target) locale."""
        return self.scores(eval_name, self.run.locale)


def read_run(run_dir: Path) -> RunResult | None:
    """The result of one finished run folder; None if it is not finished (no `summary.json` with done)."""
    summary_file = run_dir / "summary.json"
    if not summary_file.is_file():
        return None
    summary = read_json(summary_file)
    if not summary.get("done"):
        return None
    run_file = run_dir / RUN_FILE
    try:
        run = RunSpec.from_dict(read_json(run_file)) if run_file.is_file() else spec_from_config(run_dir)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SlufitError(f"{run_file}: malformed ({type(err).__name__}: {err})") from None
    metrics = summary.get("metrics") or {}
    evals = {name: eval_scores(m, run_dir / "eval" / name) for name, m in metrics.items()}
    locale_evals = {(name, locale): eval_scores(lm) for name, m in metrics.items()
                    for locale, lm in (m.get("per_locale") or {}).items()}
    _add_entity_intervals(run_dir, evals, locale_evals)
    seconds = summary.get("train_seconds")
    return RunResult(run, run_dir, None if seconds is None else float(seconds), evals, locale_evals)


def spec_from_config(run_dir: Path) -> RunSpec:
    """Grid coordinates of a run trained by plain `slufit train` (no grid_run.json), from its config.yaml."""
    import yaml

    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise SlufitError(f"{run_dir}: finished run without {RUN_FILE} or config.yaml; cannot place it in the grid")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    scheme, data, seed = config["scheme"], config["data"], int(config["train"]["seed"])
    fraction = 100.0 * float(data.get("speech_fraction") or 0.0)
    if scheme["name"] == "crosslingual":
        return RunSpec(scheme["order"], fraction, seed, scheme["target_locales"][0], scheme["source_locale"],
                       int(scheme.get("target_speech_count") or 0))
    locale = "xx-XX"
    train_files = [Path(p) for p in data.get("train") or [] if Path(p).is_file()]
    if train_files:
        with open(train_files[0], encoding="utf-8") as handle:
            locale = json.loads(next(line for line in handle if line.strip()))["locale"]
    return RunSpec(scheme["name"], 0.0 if scheme["name"] == "text_only" else fraction, seed, locale)


def gather(grid_dir: str | os.PathLike) -> list[RunResult]:
    """Every finished run folder directly under `grid_dir`, sorted by grid coordinates."""
    grid_dir = Path(grid_dir)
    if not grid_dir.is_dir():
        raise SlufitError(f"{grid_dir}: no such grid folder")
    results = [r for d in sorted(grid_dir.iterdir()) if d.is_dir() and (r := read_run(d)) is not None]
    return sorted(results, key=lambda r: (r.run.source_locale or "", r.run.locale, r.run.target_speech or 0,
                                          r.run.fraction, r.run.scheme, r.run.seed))


def eval_scores(metrics: dict[str, Any], eval_dir: Path | None = None) -> EvalScores:
    """Headline numbers from one metrics.json (slufit.scoring.evaluate's schema), as percentages."""
    ci = metrics.get("ci") or {}
    out = EvalScores(n=metrics.get("n"))
    for column, key, ci_keys in METRICS:
        value = metrics.get(key)
        if isinstance(value, dict):
            # Intent accuracy: SLURP's intent figure; the toolkit reports it as accuracy when every example is predicted.
            value = value.get("accuracy", value.get("f1"))
        setattr(out, column, _percent(value))
        interval = next((ci[k] for k in ci_keys if k in ci), None)
        lo, hi = _interval(interval)
        setattr(out, f"{column}_lo", _percent(lo))
        setattr(out, f"{column}_hi", _percent(hi))
    failures = metrics.get("parse_failures")
    if failures is None and eval_dir is not None:
        failures = _count_parse_failures(eval_dir / "predictions.jsonl")
    out.parse_failures = None if failures is None else int(failures)
    return out


def load_predictions(path: Path) -> dict[str, dict]:
    """SLURP prediction lines keyed by `file` (speech) or `slurp_id`/`id` (text), via slufit.scoring."""
    from slufit.scoring.gold import read_predictions

    with open(path, encoding="utf-8") as handle:
        first = next((json.loads(line) for line in handle if line.strip()), {})
    return read_predictions(path, text="file" not in first)


@functools.lru_cache(maxsize=8)
def _read_examples_cached(path: str, mtime: float) -> tuple:
    from slufit.data.example import read_examples

    return tuple(read_examples(path))


def gold_examples(run_dir: Path, keys: set[str], locale: str | None = None) -> list | None:
    """The gold examples behind prediction `keys` (of `locale`, if given), from the test files the run
    recorded in grid_run.json; None when those files are not on this machine."""
    info = read_json(run_dir / RUN_FILE)
    files = [Path(p) for p in info.get("test_files") or []]
    if not files or not all(p.is_file() for p in files):
        return None
    examples = [e for p in files for e in _read_examples_cached(str(p), p.stat().st_mtime)]
    # Only the examples this eval set predicted: a test file may hold other locales or modalities.
    return [e for e in examples if (locale is None or e.locale == locale) and (
        e.id in keys or any(r.path in keys or os.path.basename(r.path) in keys for r in e.recordings))]


def entity_f1_interval(examples: list, predictions: dict[str, dict], resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of entity span-F1 over gold utterances (the scorer's CIs cover intent
    accuracy and SLU-F1 only), resampled exactly as slufit.scoring.bootstrap resamples them."""
    import numpy as np

    from slufit.scoring.bootstrap import resample_weights
    from slufit.scoring.gold import gold_from_examples
    from slufit.scoring.score import score_gold
    from slufit.scoring.slurp import COL

    paths = {k for e in examples for r in e.recordings for k in (r.path, os.path.basename(r.path))}
    mode = "audio" if any(k in paths for k in predictions) else "text"
    counts = score_gold(gold_from_examples(examples, mode), predictions, missing_as_wrong=True).counts
    totals = resample_weights(len(counts), resamples, seed) @ counts
    tp, fp, fn = (totals[:, COL[name]] for name in ("span_tp", "span_fp", "span_fn"))
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(f1, [tail, 100 - tail])
    return float(low), float(high)


def _add_entity_intervals(run_dir: Path, evals: dict[str, EvalScores],
                          locale_evals: dict[tuple[str, str], EvalScores]) -> None:
    """Fill in entity-F1 intervals from the saved predictions and the gold test files, where both are here."""
    for name, scores in evals.items():
        predictions_file = run_dir / "eval" / name / "predictions.jsonl"
        if scores.entity_f1_lo is not None or not predictions_file.is_file():
            continue
        try:
            predictions = load_predictions(predictions_file)
            parts = [(None, scores)] + [(loc, s) for (n, loc), s in locale_evals.items() if n == name]
            for locale, part in parts:
                examples = gold_examples(run_dir, set(predictions), locale)
                if examples:
                    lo, hi = entity_f1_interval(examples, predictions)
                    part.entity_f1_lo, part.entity_f1_hi = 100 * lo, 100 * hi
        except (SlufitError, ValueError, KeyError):
            continue  # no interval rather than no report


def _percent(value: Any) -> float | None:
    """Scores are stored as fractions in [0, 1]; tables show percentages."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return 100.0 * float(value)


def _interval(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, dict):
        lo = next((value[k] for k in ("lo", "low", "lower") if k in value), None)
        hi = next((value[k] for k in ("hi", "high", "upper") if k in value), None)
        return lo, hi
    return None, None


def _count_parse_failures(path: Path) -> int | None:
    """Prediction lines marked `"parse_ok": false` (written by the evaluator when generation was not valid JSON)."""
    if not path.is_file():
        return None
    count = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and json.loads(line).get("parse_ok") is False:
                count += 1
    return count


def primary_eval(results: list[RunResult], wanted: str | None = None) -> str | None:
    """The eval set the tables use: `wanted` if given, else `test-speech` (slufit.train's name for the test
    set heard as speech), else the first test set with speech, then any set with speech, then any."""
    names = sorted({name for r in results for name in r.evals})
    if wanted:
        if names and wanted not in names:
            raise SlufitError(f"eval set {wanted!r} not found in the runs; they have: {', '.join(names)}")
        return wanted
    for accept in (lambda n: n == "test-speech", lambda n: n.startswith("test") and "speech" in n,
                   lambda n: "speech" in n, lambda n: True):
        found = [n for n in names if accept(n)]
        if found:
            return found[0]
    return None


def rows(results: list[RunResult], eval_name: str | None) -> list[dict[str, Any]]:
    """One row per run (the columns of results.csv), scores from `eval_name`."""
    out = []
    for r in results:
        scores = r.main_scores(eval_name) or EvalScores()
        row = {**r.run.to_dict(), "eval": eval_name, **asdict(scores), "train_seconds": r.train_seconds}
        out.append({c: row.get(c) for c in COLUMNS})
    return out


def write_csv(path: str | os.PathLike, table: list[dict[str, Any]]) -> None:
    """Atomically write rows as CSV (empty cells for missing values, scores rounded to 0.01)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: f"{v:g}" if k == "fraction" else _cell(v) for k, v in row.items()})
    with atomic_open(path) as handle:
        handle.write(buffer.getvalue())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return value
