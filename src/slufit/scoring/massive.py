"""MASSIVE-style metrics, per locale: exact match, intent accuracy and slot micro-F1.

MASSIVE's own scorer compares BIO tag sequences with seqeval; generated predictions carry no
token positions, so slots are compared here as a multiset of (type, filler) pairs: a predicted
slot is right when an equal one is in the gold (each matched once). Exact match needs the right
intent and exactly the gold slot multiset. Items are matched to predictions as in `score`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Mapping

from slufit.scoring.gold import GoldSet
from slufit.scoring.score import EMPTY_PREDICTION
from slufit.scoring.slurp import prf


def _slots(label: dict[str, Any]) -> Counter:
    return Counter((e["type"], e["filler"]) for e in label.get("entities", []))


def massive_metrics(gold: GoldSet, predictions: Mapping[str, dict[str, Any]],
                    missing_as_wrong: bool = False) -> dict[str, Any]:
    """{"overall": {...}, "locales": {locale: {...}}}, each with `n`, `exact_match`,
    `intent_accuracy`, `slot_f1` (precision/recall/F1 dict) as fractions."""
    # per locale: [items, exact, intent_ok, slot_tp, slot_fp, slot_fn]
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0] * 6)
    for keys, utterance in gold.items:
        key = next((k for k in keys if k in predictions), None)
        if key is None and not missing_as_wrong:
            continue
        pred = EMPTY_PREDICTION if key is None else predictions[key]
        label = gold.labels[utterance]
        intent_ok = (label["scenario"], label["action"]) == (pred["scenario"], pred["action"])
        g, p = _slots(label), _slots(pred)
        tp = sum((g & p).values())
        row = [1, intent_ok and g == p, intent_ok, tp, sum(p.values()) - tp, sum(g.values()) - tp]
        for locale in (gold.locales[utterance], "overall"):
            totals[locale] = [a + b for a, b in zip(totals[locale], row)]

    def summary(t: list[float]) -> dict[str, Any]:
        n = t[0]
        return {"n": int(n), "exact_match": t[1] / n if n else 0.0,
                "intent_accuracy": t[2] / n if n else 0.0, "slot_f1": prf(t[3], t[4], t[5])}

    overall = totals.pop("overall", [0.0] * 6)
    return {"overall": summary(overall), "locales": {loc: summary(t) for loc, t in sorted(totals.items())}}
