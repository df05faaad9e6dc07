"""Is a grid in the reference study's regime? Shares of the 100 %-speech figures, with 95 % intervals.

The study's regime is that of a pretrained LALM whose text-only fine-tuning carries over to speech:
text-only keeps 94.9 % of the 100 %-speech intent accuracy, curriculum at 2 % and 5 % speech keep
95.6 % and 97.4 % of its SLU-F1. Issue 11 set the embedded default's targets as such shares
(REGIME_* below). One seed cannot carry that verdict: a share moved by 2-4 SLU-F1 points between
LM seeds of one bridge (issue 22). So each share gets a 95 % interval from a bootstrap that
resamples both sources of noise:

- test utterances (one weight vector per resample, shared by every run: all runs of a grid are
  scored on the same test set, so the share is paired on it), and
- seeds: each cell's runs are drawn with replacement, and the cell's value in a resample is the mean
  of the drawn runs' values (with one seed, only the test set varies; the report says so).

A target is *met* when the interval's low end reaches it, *missed* when its high end stays under it,
and *open* otherwise; the regime is "reproduced" only when every target is met.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from slufit.errors import SlufitError
from slufit.grid.cells import ROW_LABELS, Cell, fmt, reference_cell
from slufit.grid.results import RunResult, gold_examples, load_predictions

REGIME_TEXT_ONLY_INTENT = 80.0
REGIME_LOW_SPEECH_SLU = 90.0
REGIME_FRACTIONS = (2.0, 5.0)
STUDY_TEXT_ONLY_INTENT_SHARE = 100 * 83.60 / 88.13

# (scheme, fraction) of a cell, (scheme, fraction) of the reference, "intent_acc" or "slu_f1" -> (low, high) in %
ShareInterval = Callable[[tuple[str, float], tuple[str, float], str], "tuple[float, float] | None"]


def share_bootstrap(results: list[RunResult], eval_name: str, resamples: int = 1000, seed: int = 0) -> ShareInterval:
    """An interval function over `results` (one condition of one grid), reading each run's saved predictions
    and the gold test file it recorded; it answers None where those are not on this machine."""
    from slufit.scoring.bootstrap import STATISTICS, resample_weights
    from slufit.scoring.gold import gold_from_examples
    from slufit.scoring.score import score_gold

    runs: dict[tuple[str, float], list[RunResult]] = {}
    for r in results:
        runs.setdefault((r.run.scheme, r.run.fraction), []).append(r)
    statistic = {"intent_acc": STATISTICS["intent_accuracy"], "slu_f1": STATISTICS["slu_f1"]}

    def predictions(r: RunResult) -> dict | None:
        path = r.run_dir / "eval" / eval_name / "predictions.jsonl"
        return load_predictions(path) if path.is_file() else None

    def interval(cell: tuple[str, float], reference: tuple[str, float], metric: str) -> tuple[float, float] | None:
        groups = [runs.get(cell, []), runs.get(reference, [])]
        if not all(groups):
            return None
        try:
            preds = [[predictions(r) for r in group] for group in groups]
            if any(p is None for group in preds for p in group):
                return None
            keys = set().union(*(p for group in preds for p in group))
            examples = gold_examples(groups[0][0].run_dir, keys, groups[0][0].run.locale)
            if not examples:
                return None
            paths = {k for e in examples for rec in e.recordings for k in (rec.path, rec.path.rsplit("/", 1)[-1])}
            gold = gold_from_examples(examples, "audio" if keys & paths else "text")
            counts = [[score_gold(gold, p, missing_as_wrong=True).counts for p in group] for group in preds]
        except (SlufitError, OSError, ValueError, KeyError):
            return None
        weights = resample_weights(len(counts[0][0]), resamples, seed)
        rng = np.random.default_rng(seed + 1)
        values = []
        for group in counts:
            per_run = np.stack([statistic[metric](weights @ c) for c in group], axis=1)  # (resamples, runs)
            drawn = rng.integers(0, per_run.shape[1], size=per_run.shape)  # seeds drawn with replacement
            values.append(np.take_along_axis(per_run, drawn, axis=1).mean(axis=1))
        cell_values, reference_values = values
        ok = reference_values > 0
        if not ok.any():
            return None
        shares = 100 * cell_values[ok] / reference_values[ok]
        low, high = np.percentile(shares, [2.5, 97.5])
        return float(low), float(high)

    return interval


def _judge(value: float, target: float, bounds: tuple[float, float] | None) -> tuple[str, str]:
    """(outcome, text) of one share against its target: met / missed / open (point estimate only: met / missed)."""
    if bounds is None:
        return ("met" if value >= target else "missed"), f"{value:.1f} %"
    low, high = bounds
    outcome = "met" if low >= target else "missed" if high < target else "open"
    return outcome, f"{value:.1f} % [{low:.1f}, {high:.1f}]"


def regime_verdict(cells: list[Cell], reference_scheme: str, interval: ShareInterval | None = None) -> str | None:
    """One paragraph: is the grid in the study's regime? None without a 100 % reference.

    `cells` are means over seeds (slufit.grid.cells); `interval` gives each share's 95 % interval
    (share_bootstrap); without it the verdict rests on the point estimates and says so.
    """
    full = reference_cell(cells, reference_scheme)
    if full is None:
        return None
    if not full.mean["intent_acc"] or not full.mean["slu_f1"]:
        return (f"**Regime:** not measurable: the 100 %-speech reference scores intent accuracy "
                f"{fmt(full.mean['intent_acc'])} % and SLU-F1 {fmt(full.mean['slu_f1'])} %, so fine-tuning did not "
                f"learn the task at these sizes (docs/embedded_regime.md).")
    ref_key = (full.scheme, full.fraction)
    outcomes, parts = [], []

    def bounds(cell, metric):
        return interval((cell.scheme, cell.fraction), ref_key, metric) if interval else None

    text = next((c for c in cells if c.scheme == "text_only"), None)
    if text is not None and text.mean["intent_acc"] is not None:
        value = 100 * text.mean["intent_acc"] / full.mean["intent_acc"]
        outcome, shown = _judge(value, REGIME_TEXT_ONLY_INTENT, bounds(text, "intent_acc"))
        outcomes.append(outcome)
        parts.append(f"text-only reaches {shown} of the 100 %-speech intent accuracy (target >= "
                     f"{REGIME_TEXT_ONLY_INTENT:g} %: {outcome}; the study: {STUDY_TEXT_ONLY_INTENT_SHARE:.1f} %)")
    for fraction in REGIME_FRACTIONS:
        at = [c for c in cells if c.fraction == fraction and c.scheme != "text_only" and c.mean["slu_f1"] is not None]
        if not at:
            continue
        best = max(at, key=lambda c: c.mean["slu_f1"])
        value = 100 * best.mean["slu_f1"] / full.mean["slu_f1"]
        outcome, shown = _judge(value, REGIME_LOW_SPEECH_SLU, bounds(best, "slu_f1"))
        outcomes.append(outcome)
        parts.append(f"at {fraction:g} % speech the best scheme ({ROW_LABELS.get(best.scheme, best.scheme)}) reaches "
                     f"{shown} of the 100 %-speech SLU-F1 (target >= {REGIME_LOW_SPEECH_SLU:g} %: {outcome})")
    if not outcomes:
        return None
    if all(o == "met" for o in outcomes):
        regime = "reproduced: text learnt by fine-tuning carries over to speech, as in a pretrained LALM"
    elif "missed" in outcomes:
        regime = "not reproduced on every count"
    else:
        regime = "not established: a target lies inside its 95 % interval (more seeds or test items would tell)"
    seeds = max(len(c.seeds) for c in cells)
    if interval is None:
        basis = f"point estimates over {seeds} seed(s) (no prediction files here for intervals)"
    else:
        basis = (f"shares with 95 % intervals over test utterances and {seeds} seed(s) per cell"
                 + ("; one seed: the seed-to-seed spread (2-4 SLU-F1 points) is not in these intervals"
                    if seeds == 1 else ""))
    return f"**Regime:** {regime} ({basis}): " + "; ".join(parts) + "."
