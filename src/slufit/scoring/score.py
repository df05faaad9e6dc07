"""Match predictions to gold items and turn them into SLURP metrics, CIs and paired tests.

The toolkit's behaviour is the default here: a gold item with no prediction is skipped (and
counted in `missing`); predictions that match no gold item are ignored. With
`missing_as_wrong=True` a missing item is scored as an empty prediction (wrong intent, no
entities), which is what a fair comparison of systems needs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from slufit.data.example import Example
from slufit.scoring.bootstrap import confidence_intervals, paired_test
from slufit.scoring.gold import GoldSet, gold_from_examples
from slufit.scoring.slurp import COUNTS, item_counts, metrics_from_counts

EMPTY_PREDICTION = {"scenario": "", "action": "", "entities": []}


@dataclass
class Scored:
    """Per-utterance count rows (see `slurp.COUNTS`) of one prediction set against a gold set."""

    counts: np.ndarray
    missing: list[str] = field(default_factory=list)  # names of gold items without a prediction
    unmatched: int = 0  # predictions that matched no gold item
    # Predicted fillers, and how many of them occur verbatim in the item's transcript (see `verbatim`).
    fillers: int = 0
    verbatim: int = 0

    @property
    def n(self) -> int:
        return int(self.counts[:, 0].sum())


def score_gold(gold: GoldSet, predictions: Mapping[str, dict[str, Any]], missing_as_wrong: bool = False) -> Scored:
    """Score every gold item that has a prediction (or all of them, when `missing_as_wrong`)."""
    counts = np.zeros((len(gold.labels), len(COUNTS)))
    fillers = verbatim_count = 0
    missing: list[str] = []
    used: set[str] = set()
    for keys, utterance in gold.items:
        key = next((k for k in keys if k in predictions), None)
        if key is None:
            missing.append(keys[0])
            if not missing_as_wrong:
                continue
            prediction = EMPTY_PREDICTION
        else:
            used.add(key)
            prediction = predictions[key]
            if utterance < len(gold.texts):
                found = [verbatim(e.get("filler", ""), gold.texts[utterance]) for e in prediction.get("entities", [])
                         if isinstance(e, dict)]
                fillers, verbatim_count = fillers + len(found), verbatim_count + sum(found)
        counts[utterance] += item_counts(gold.labels[utterance], prediction)
    # Utterances with no gold item (no recordings, in audio mode) are not resampling units.
    has_items = np.zeros(len(gold.labels), dtype=bool)
    has_items[[u for _, u in gold.items]] = True
    return Scored(counts[has_items], missing, len(predictions) - len(used), fillers, verbatim_count)


def verbatim(filler: str, transcript: str) -> bool:
    """Whether `filler` occurs in `transcript` as whole words (case and runs of spaces ignored). A filler that
    is not in what was said was made up or misheard: issue 21 measures the share that is."""
    filler, transcript = " ".join(str(filler).lower().split()), " ".join(transcript.lower().split())
    return bool(filler) and re.search(rf"(?<!\w){re.escape(filler)}(?!\w)", transcript) is not None


def report(scored: Scored, ci: bool = False, seed: int = 0) -> dict[str, Any]:
    """The `--json` object: each metric's precision/recall/F1, `n`, `missing`, optionally `ci`."""
    out: dict[str, Any] = metrics_from_counts(scored.counts.sum(axis=0))
    out["n"] = scored.n
    out["missing"] = len(scored.missing)
    out["verbatim_fillers"] = {"predicted": scored.fillers, "verbatim": scored.verbatim,
                               "share": scored.verbatim / scored.fillers if scored.fillers else None}
    if ci:
        out["ci"] = confidence_intervals(scored.counts, seed=seed)
    return out


def _gold(examples: GoldSet | Iterable[Example], predictions: Mapping[str, Any], mode: str) -> GoldSet:
    if isinstance(examples, GoldSet):
        return examples
    examples = list(examples)
    if mode == "auto":
        # Speech items are keyed by recording path (or file name), text items by example id.
        paths = {k for e in examples for r in e.recordings for k in (r.path, os.path.basename(r.path))}
        mode = "audio" if any(k in paths for k in predictions) else "text"
    return gold_from_examples(examples, mode)


def evaluate(examples: GoldSet | Iterable[Example], predictions: Mapping[str, dict[str, Any]],
             missing_as_wrong: bool = True, ci: bool = True, seed: int = 0, mode: str = "auto") -> dict[str, Any]:
    """SLURP metrics of `predictions` (item key -> prediction dict) against canonical examples.

    Keys are example ids for text items and recording paths for speech items; `mode="auto"`
    picks speech when any key is a recording path. Returns the `slufit score --json` object.
    """
    gold = _gold(examples, predictions, mode)
    return report(score_gold(gold, predictions, missing_as_wrong), ci=ci, seed=seed)


def paired_bootstrap(examples: GoldSet | Iterable[Example], predictions_a: Mapping[str, dict[str, Any]],
                     predictions_b: Mapping[str, dict[str, Any]], missing_as_wrong: bool = True,
                     seed: int = 0, resamples: int = 1000, mode: str = "auto") -> dict[str, Any]:
    """Paired bootstrap over gold utterances: is A better than B on intent accuracy and SLU-F1?

    Returns, per statistic, A, B, the difference, its 95 % interval and the one-sided p-value.
    """
    gold = _gold(examples, {**predictions_a, **predictions_b}, mode)
    a = score_gold(gold, predictions_a, missing_as_wrong)
    b = score_gold(gold, predictions_b, missing_as_wrong)
    out = paired_test(a.counts, b.counts, resamples=resamples, seed=seed)
    out["n"] = {"a": a.n, "b": b.n}
    out["missing"] = {"a": len(a.missing), "b": len(b.missing)}
    return out
