"""The SLURP metrics, defined as the official toolkit defines them.

Reference: pswietojanski/slurp, scripts/evaluation (metrics/metrics.py, metrics/distance.py,
evaluate.py). This is an independent implementation of the same definitions:

- scenario, action, intent (`scenario_action`): micro-averaged F1 over the scored items. A right
  label is a TP; a wrong one is an FP (of the predicted label) and an FN (of the gold label), so
  precision = recall = F1 = accuracy.
- entities (span F1): a predicted entity is a TP when an equal {type, filler} is still among the
  gold entities (each gold entity matches once), otherwise an FP; gold entities left over are FNs.
  Comparison is exact, so case differences count as errors.
- entities_word / entities_char (distance F1): each predicted entity whose type is still among the
  gold entities is paired with the remaining gold entity of that type at the lowest distance (the
  first one on ties); that pair adds 1 TP and `distance` to both FP and FN. A predicted type with no
  gold entity left adds 1 FP; unpaired gold entities add 1 FN each. Word distance is WER (word edit
  distance / gold words, as jiwer computes it: it can exceed 1); char distance is the Levenshtein
  distance divided by the longer string's length.
- slu_f1: precision/recall/F1 of the summed word and char TP/FP/FN.

All metrics here are micro averages, so they are sums of per-item counts: `item_counts` gives one
row of counts per item, and totals (and bootstrap resamples) are sums of rows.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

# Columns of the per-item count vector.
COUNTS = (
    "items", "scenario_ok", "action_ok", "intent_ok",
    "span_tp", "span_fp", "span_fn",
    "word_tp", "word_fp", "word_fn",
    "char_tp", "char_fp", "char_fn",
)
COL = {name: i for i, name in enumerate(COUNTS)}
METRICS = ("scenario", "action", "intent", "entities", "entities_word", "entities_char", "slu_f1")

_MULTISPACE = re.compile(r"\s\s+")


def _words(text: str) -> list[str]:
    # jiwer's default WER transform: collapse runs of whitespace, strip, split on single spaces.
    return [w for w in _MULTISPACE.sub(" ", text).strip().split(" ") if w]


def word_distance(truth: str, hypothesis: str) -> float:
    """WER of `hypothesis` against `truth`, equal to `jiwer.wer` (an empty truth gives the count of
    hypothesis words, as jiwer 4 does; the official toolkit's jiwer 2 raised there)."""
    ref, hyp = _words(truth), _words(hypothesis)
    edits = Levenshtein.distance(ref, hyp)
    return float(edits) / len(ref) if ref else float(len(hyp))


def char_distance(truth: str, hypothesis: str) -> float:
    """Levenshtein distance normalised by the longer string (0 for two empty strings)."""
    return float(Levenshtein.normalized_distance(truth, hypothesis))


def _span_counts(gold: Sequence[tuple[str, str]], pred: Sequence[tuple[str, str]]) -> tuple[int, int, int]:
    remaining = list(gold)
    tp = fp = 0
    for entity in pred:
        if entity in remaining:
            remaining.remove(entity)
            tp += 1
        else:
            fp += 1
    return tp, fp, len(remaining)


def _distance_counts(gold: Sequence[tuple[str, str]], pred: Sequence[tuple[str, str]], distance) -> tuple[float, float, float]:
    remaining = list(gold)
    tp, fp, fn = 0.0, 0.0, 0.0
    for ptype, pfiller in pred:
        best, best_d = -1, float("inf")
        for j, (gtype, gfiller) in enumerate(remaining):
            if gtype == ptype:
                d = distance(gfiller, pfiller)
                if d < best_d:  # strict: the first gold entity wins ties
                    best, best_d = j, d
        if best < 0:
            fp += 1
        else:
            tp += 1
            fp += best_d
            fn += best_d
            remaining.pop(best)
    return tp, fp, fn + len(remaining)


def _entities(label: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["type"], e["filler"]) for e in label.get("entities", [])]


def item_counts(gold: dict[str, Any], pred: dict[str, Any]) -> np.ndarray:
    """The count vector (see COUNTS) of one scored item: gold label vs prediction."""
    g, p = _entities(gold), _entities(pred)
    scenario_ok = gold["scenario"] == pred["scenario"]
    action_ok = gold["action"] == pred["action"]
    # Intent compares the joined strings, as the toolkit does.
    intent_ok = f"{gold['scenario']}_{gold['action']}" == f"{pred['scenario']}_{pred['action']}"
    return np.array(
        [1, scenario_ok, action_ok, intent_ok,
         *_span_counts(g, p), *_distance_counts(g, p, word_distance), *_distance_counts(g, p, char_distance)],
        dtype=np.float64,
    )


def prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    """Precision, recall, F1 with the toolkit's zero conventions (0 when undefined)."""
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def metrics_from_counts(total: np.ndarray) -> dict[str, dict[str, float]]:
    """All SLURP metrics from summed counts."""
    c = {name: float(total[i]) for i, name in enumerate(COUNTS)}
    out = {}
    for name in ("scenario", "action", "intent"):
        ok = c[f"{name}_ok"]
        out[name] = prf(ok, c["items"] - ok, c["items"] - ok)
    out["entities"] = prf(c["span_tp"], c["span_fp"], c["span_fn"])
    out["entities_word"] = prf(c["word_tp"], c["word_fp"], c["word_fn"])
    out["entities_char"] = prf(c["char_tp"], c["char_fp"], c["char_fn"])
    out["slu_f1"] = prf(c["word_tp"] + c["char_tp"], c["word_fp"] + c["char_fp"], c["word_fn"] + c["char_fn"])
    return out


def intent_accuracy(total: np.ndarray) -> np.ndarray:
    """Intent accuracy of summed counts; works on a (..., len(COUNTS)) array (0 where no items)."""
    items = total[..., COL["items"]]
    return np.divide(total[..., COL["intent_ok"]], items, out=np.zeros_like(items), where=items > 0)


def slu_f1(total: np.ndarray) -> np.ndarray:
    """SLU-F1 of summed counts, vectorised like `intent_accuracy`."""
    tp = total[..., COL["word_tp"]] + total[..., COL["char_tp"]]
    fp = total[..., COL["word_fp"]] + total[..., COL["char_fp"]]
    fn = total[..., COL["word_fn"]] + total[..., COL["char_fn"]]
    # F1 = 2PR/(P+R) = 2TP / (2TP + FP + FN) whenever TP > 0; the toolkit gives 0 when TP = 0.
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=(tp > 0) & (denom > 0))
