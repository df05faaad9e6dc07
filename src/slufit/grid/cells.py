"""Table 1's cells: a grid's runs of one (scheme, speech fraction), averaged over their seeds, and how
their numbers are written. Shared by the report (slufit.grid.report) and the regime verdict
(slufit.grid.regime)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from slufit.grid.results import EvalScores, RunResult

ROW_LABELS = {"text_only": "text-only", "mix": "direct mixing", "curriculum": "curriculum"}


@dataclass
class Cell:
    """One cell of Table 1: a (condition, scheme, fraction) averaged over its seeds."""

    scheme: str
    fraction: float
    seeds: list[int]
    mean: dict[str, float | None]  # metric and its _lo/_hi -> mean over seeds
    sd: dict[str, float | None]  # metric -> standard deviation over seeds (None with one seed)
    parse_failures: int | None
    train_seconds: float | None


_METRIC_KEYS = ("intent_acc", "entity_f1", "slu_f1")
_VALUE_KEYS = tuple(k + s for k in _METRIC_KEYS for s in ("", "_lo", "_hi"))


def mean_of(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def make_cells(results: list[RunResult], eval_name: str | None) -> list[Cell]:
    """Average the runs of each (scheme, fraction) over seeds; `results` must share one condition."""
    groups: dict[tuple[str, float], list[RunResult]] = defaultdict(list)
    for r in results:
        groups[(r.run.scheme, r.run.fraction)].append(r)
    cells = []
    for (scheme, fraction), group in sorted(groups.items(), key=lambda kv: (kv[0][1], _scheme_order(kv[0][0]))):
        scores = [r.main_scores(eval_name) or EvalScores() for r in group]
        mean = {k: mean_of([getattr(s, k) for s in scores]) for k in _VALUE_KEYS}
        sd = {}
        for k in _METRIC_KEYS:
            vals = [getattr(s, k) for s in scores if getattr(s, k) is not None]
            sd[k] = statistics.stdev(vals) if len(vals) > 1 else None
        failures = [s.parse_failures for s in scores if s.parse_failures is not None]
        cells.append(Cell(scheme, fraction, sorted(r.run.seed for r in group), mean, sd,
                          sum(failures) if failures else None, mean_of([r.train_seconds for r in group])))
    return cells


def _scheme_order(scheme: str) -> int:
    return {"text_only": 0, "mix": 1, "curriculum": 2}.get(scheme, 3)


def fmt(value: float | None, lo: float | None = None, hi: float | None = None, sd: float | None = None) -> str:
    """`85.74 [84.10, 87.20]` (with `±sd` across seeds when there are several)."""
    if value is None:
        return "–"
    text = f"{value:.2f}"
    if sd is not None:
        text += f" ±{sd:.2f}"
    if lo is not None and hi is not None:
        text += f" [{lo:.2f}, {hi:.2f}]"
    return text


def share(value: float | None, full: float | None) -> str:
    if value is None or not full:
        return "–"
    return f"{100.0 * value / full:.1f} %"


def reference_cell(cells: list[Cell], reference_scheme: str | None) -> Cell | None:
    """The full-speech cell: `reference_scheme` at 100 %, else the best SLU-F1 at 100 %; None without a scheme."""
    if reference_scheme is None:
        return None
    full = [c for c in cells if c.fraction == 100.0 and c.mean["slu_f1"] is not None]
    chosen = [c for c in full if c.scheme == reference_scheme]
    return (chosen or sorted(full, key=lambda c: -c.mean["slu_f1"]))[0] if full else None
