"""Bootstrap confidence intervals and paired significance tests over gold utterances.

Resampling units are utterances (all recordings of one utterance travel together, since they
share a label and are not independent). All SLURP metrics are ratios of summed counts, so a
resample is a weight vector over utterances and its totals are one matrix product: 1,000
resamples of the SLURP test set take a few milliseconds.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from slufit.scoring.slurp import intent_accuracy, slu_f1

RESAMPLES = 1000
LEVEL = 0.95
STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "intent_accuracy": intent_accuracy,
    "slu_f1": slu_f1,
}


def resample_weights(n_units: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n_units) counts: how often each unit is drawn in each resample."""
    rng = np.random.default_rng(seed)
    if n_units == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=resamples).astype(np.float64)


def confidence_intervals(counts: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                         level: float = LEVEL) -> dict:
    """Percentile bootstrap intervals of intent accuracy and SLU-F1 from per-utterance counts
    (rows of `slurp.COUNTS`)."""
    totals = resample_weights(len(counts), resamples, seed) @ counts
    tail = (1.0 - level) / 2 * 100
    out: dict = {"level": level, "resamples": resamples, "seed": seed}
    for name, statistic in STATISTICS.items():
        low, high = np.percentile(statistic(totals), [tail, 100 - tail])
        out[name] = {"low": float(low), "high": float(high)}
    return out


def paired_test(counts_a: np.ndarray, counts_b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                level: float = LEVEL) -> dict:
    """Paired bootstrap: is A better than B? Both count arrays are aligned on the same utterances.

    For each statistic: the observed difference A - B, its percentile interval, and the one-sided
    p-value, the share of resamples in which A is not better than B (Koehn, 2004).
    """
    if counts_a.shape != counts_b.shape:
        raise ValueError("paired counts must cover the same utterances")
    weights = resample_weights(len(counts_a), resamples, seed)
    totals_a, totals_b = weights @ counts_a, weights @ counts_b
    tail = (1.0 - level) / 2 * 100
    out: dict = {"level": level, "resamples": resamples, "seed": seed}
    for name, statistic in STATISTICS.items():
        delta = statistic(totals_a) - statistic(totals_b)
        low, high = np.percentile(delta, [tail, 100 - tail])
        a, b = float(statistic(counts_a.sum(axis=0))), float(statistic(counts_b.sum(axis=0)))
        out[name] = {"a": a, "b": b, "delta": a - b, "low": float(low), "high": float(high),
                     "p_value": float(np.mean(delta <= 0))}
    return out
