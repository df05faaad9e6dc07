"""Hand-made cases for every path of the SLURP metrics, the bootstrap, MASSIVE metrics and the
Python API. Expected counts are worked out by hand from the official toolkit's definitions."""

import random

import jiwer
import numpy as np
import pytest

from slufit.data.example import Entity, Example, Recording
from slufit.scoring import evaluate, paired_bootstrap
from slufit.scoring.bootstrap import confidence_intervals, paired_test, resample_weights
from slufit.scoring.gold import gold_from_examples
from slufit.scoring.massive import massive_metrics
from slufit.scoring.slurp import COL, char_distance, item_counts, metrics_from_counts, prf, word_distance


def label(scenario="calendar", action="set", **entities):
    """A label; entities as type=filler or type=[filler, filler]."""
    ents = []
    for etype, fillers in entities.items():
        for filler in fillers if isinstance(fillers, list) else [fillers]:
            ents.append({"type": etype, "filler": filler})
    return {"scenario": scenario, "action": action, "entities": ents}


def counts(gold, pred):
    c = item_counts(gold, pred)
    return {k: c[COL[k]] for k in COL}


def triple(c, prefix):
    return (c[f"{prefix}_tp"], c[f"{prefix}_fp"], c[f"{prefix}_fn"])


# --- distances -------------------------------------------------------------------------------

def test_word_distance_equals_jiwer_on_random_strings():
    rng = random.Random(0)
    words = ["a", "b", "ten", "am", "A", " ", "  ", "\t"]
    for _ in range(500):
        truth = " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
        hyp = " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        assert word_distance(truth, hyp) == pytest.approx(jiwer.wer(truth, hyp)), (truth, hyp)


def test_distance_edge_cases():
    assert word_distance("ten am", "ten am") == 0.0
    assert word_distance("ten am", "Ten am") == 0.5  # case-sensitive, as jiwer's default transform
    assert word_distance("a", "a b c") == 2.0  # WER is not capped at 1
    assert word_distance("ten am", "") == 1.0
    assert word_distance("", "") == 0.0
    assert word_distance("", "x y") == 2.0  # jiwer 4: insertions over an empty reference
    assert word_distance("ten  am ", " ten am") == 0.0  # runs of spaces collapse, ends strip
    assert char_distance("tuesday", "Tuesday") == pytest.approx(1 / 7)
    assert char_distance("tuesday", "tuesdya") == pytest.approx(2 / 7)
    assert char_distance("ab", "abcd") == pytest.approx(2 / 4)  # normalised by the longer string
    assert char_distance("", "") == 0.0
    assert char_distance("", "abc") == 1.0


# --- per-item counts ---------------------------------------------------------------------------

def test_perfect_prediction():
    c = counts(label(date="tuesday"), label(date="tuesday"))
    assert (c["scenario_ok"], c["action_ok"], c["intent_ok"]) == (1, 1, 1)
    assert triple(c, "span") == triple(c, "word") == triple(c, "char") == (1, 0, 0)


def test_no_gold_and_no_predicted_entities_count_nothing():
    c = counts(label(), label())
    assert triple(c, "span") == triple(c, "word") == triple(c, "char") == (0, 0, 0)
    m = metrics_from_counts(item_counts(label(), label()))
    assert m["intent"]["f1"] == 1.0
    assert m["entities"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}  # toolkit: 0 when undefined


def test_no_gold_entities_prediction_has_one():
    c = counts(label(), label(date="tuesday"))
    assert triple(c, "span") == triple(c, "word") == triple(c, "char") == (0, 1, 0)


def test_no_predicted_entities():
    c = counts(label(date="tuesday", time="ten am"), label())
    assert triple(c, "span") == triple(c, "word") == triple(c, "char") == (0, 0, 2)


def test_duplicates_match_once():
    c = counts(label(date="tuesday"), label(date=["tuesday", "tuesday"]))
    assert triple(c, "span") == (1, 1, 0)
    assert triple(c, "word") == (1, 1, 0)  # the second has no gold date left: a plain FP
    c = counts(label(date=["tuesday", "tuesday"]), label(date="tuesday"))
    assert triple(c, "span") == triple(c, "char") == (1, 0, 1)


def test_type_only_in_prediction():
    c = counts(label(time="ten am"), label(date="ten am"))
    assert triple(c, "span") == triple(c, "word") == triple(c, "char") == (0, 1, 1)


def test_case_differences_are_errors():
    c = counts(label(date="tuesday"), label(date="Tuesday"))
    assert triple(c, "span") == (0, 1, 1)
    assert triple(c, "word") == (1, 1, 1)
    assert triple(c, "char") == pytest.approx((1, 1 / 7, 1 / 7))


def test_empty_fillers():
    c = counts(label(date="tuesday"), label(date=""))
    assert triple(c, "span") == (0, 1, 1)
    assert triple(c, "word") == (1, 1, 1)
    assert triple(c, "char") == (1, 1, 1)
    c = counts(label(date=""), label(date="next week"))
    assert triple(c, "word") == (1, 2, 2)
    assert triple(c, "char") == (1, 1, 1)


def test_distance_pairs_lowest_distance_first_on_ties():
    gold, pred = label(date=["monday", "tuesday"]), label(date="tuesdya")
    c = counts(gold, pred)
    # word: both golds are 1 word off (tie) -> the first (monday) pairs; tuesday is left as FN.
    assert triple(c, "word") == (1, 1, 2)
    # char: tuesday is 2/7 away, closer than monday -> it pairs; monday is left as FN.
    assert triple(c, "char") == pytest.approx((1, 2 / 7, 2 / 7 + 1))


def test_word_distance_above_one_adds_more_than_one_error():
    c = counts(label(time="ten"), label(time="ten am please"))
    assert triple(c, "word") == (1, 2, 2)


def test_intent_compares_joined_labels_like_the_toolkit():
    c = counts(label("a_b", "c"), label("a", "b_c"))
    assert (c["scenario_ok"], c["action_ok"], c["intent_ok"]) == (0, 0, 1)


def test_slu_f1_sums_word_and_char_counts():
    total = item_counts(label(date="tuesday", time="ten am"), label(date="Tuesday", person="bob"))
    m = metrics_from_counts(total)
    # word: date pairs at distance 1 -> tp 1, fp 1 + 1 (person), fn 1 + 1 (time)
    # char: date pairs at 1/7 -> tp 1, fp 1/7 + 1, fn 1/7 + 1
    tp, fp, fn = 2, 2 + 1 / 7 + 1, 2 + 1 / 7 + 1
    assert m["slu_f1"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["entities_word"] == pytest.approx(prf(1, 2, 2))


def test_prf_conventions():
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert prf(0, 3, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert prf(3, 1, 0) == pytest.approx({"precision": 0.75, "recall": 1.0, "f1": 6 / 7})


# --- bootstrap ---------------------------------------------------------------------------------

def test_resample_weights_draw_every_unit_count_times():
    w = resample_weights(50, resamples=200, seed=3)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all()
    assert np.array_equal(w, resample_weights(50, resamples=200, seed=3))
    assert not np.array_equal(w, resample_weights(50, resamples=200, seed=4))


def _utterance_counts(correct: list[int]) -> np.ndarray:
    rows = np.zeros((len(correct), len(COL)))
    rows[:, COL["items"]] = 1
    rows[:, COL["intent_ok"]] = correct
    return rows


def test_confidence_interval_brackets_the_estimate():
    c = _utterance_counts([1] * 80 + [0] * 20)
    ci = confidence_intervals(c, seed=0)
    low, high = ci["intent_accuracy"]["low"], ci["intent_accuracy"]["high"]
    # Binomial standard error at p = 0.8, n = 100 is 0.04: the 95 % interval is about 0.72-0.88.
    assert 0.70 < low < 0.76 and 0.84 < high < 0.90
    assert ci["slu_f1"] == {"low": 0.0, "high": 0.0}  # no entities at all


def test_paired_test_p_values():
    a = _utterance_counts([1] * 60 + [0] * 40)
    same = paired_test(a, a)
    assert same["intent_accuracy"]["delta"] == 0 and same["intent_accuracy"]["p_value"] == 1.0
    better = paired_test(_utterance_counts([1] * 70 + [0] * 30), a)
    assert better["intent_accuracy"]["delta"] == pytest.approx(0.10)
    assert better["intent_accuracy"]["p_value"] == 0.0  # A is right wherever B is, and more often
    worse = paired_test(a, _utterance_counts([1] * 70 + [0] * 30))
    assert worse["intent_accuracy"]["p_value"] == 1.0


# --- Python API on canonical examples --------------------------------------------------------

def _examples():
    return [
        Example("slurp-1", "en-US", "wake me up at ten", "alarm", "set", "alarm_set",
                (Entity("time", "ten"),), (Recording("audio/a1.flac"), Recording("audio/a1-headset.flac"))),
        Example("slurp-2", "en-US", "what time is it", "datetime", "query", "datetime_query",
                (), (Recording("audio/a2.flac"),)),
        Example("corpus-fr-1", "fr-FR", "réveille moi à dix heures", "alarm", "set", "alarm_set",
                (Entity("time", "dix heures"),), ()),
    ]


def test_evaluate_speech_items_keyed_by_recording_path():
    right = {"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "ten"}]}
    result = evaluate(_examples(), {"audio/a1.flac": right, "audio/a2.flac": right}, ci=False)
    # Speech items: 3 recordings (the French example has none); a1-headset is missing -> wrong.
    assert (result["n"], result["missing"]) == (3, 1)
    assert result["intent"]["f1"] == pytest.approx(1 / 3)
    # entities: a1 right (tp 1), a2 predicts an extra time (fp 1), a1-headset misses time (fn 1)
    assert result["entities"] == pytest.approx(prf(1, 1, 1))
    skipped = evaluate(_examples(), {"audio/a1.flac": right, "audio/a2.flac": right}, missing_as_wrong=False, ci=False)
    assert (skipped["n"], skipped["missing"]) == (2, 1)
    assert skipped["intent"]["f1"] == 0.5


def test_evaluate_text_items_keyed_by_id_with_ci():
    preds = {"slurp-1": {"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "ten"}]},
             "slurp-2": {"scenario": "datetime", "action": "query", "entities": []},
             "corpus-fr-1": {"scenario": "alarm", "action": "query", "entities": [{"type": "time", "filler": "dix heures"}]}}
    result = evaluate(_examples(), preds, seed=0)
    assert (result["n"], result["missing"]) == (3, 0)
    assert result["intent"]["f1"] == pytest.approx(2 / 3)
    assert result["slu_f1"]["f1"] == 1.0
    assert set(result) == {"scenario", "action", "intent", "entities", "entities_word", "entities_char",
                           "slu_f1", "n", "missing", "verbatim_fillers", "ci"}
    # Both predicted fillers ("ten", "dix heures") are words of their transcripts.
    assert result["verbatim_fillers"] == {"predicted": 2, "verbatim": 2, "share": 1.0}
    assert 0 <= result["ci"]["intent_accuracy"]["low"] <= 2 / 3 <= result["ci"]["intent_accuracy"]["high"] <= 1


def test_gold_keys_for_canonical_examples():
    audio = gold_from_examples(_examples(), "audio")
    assert [keys for keys, _ in audio.items] == [("audio/a1.flac", "a1.flac"), ("audio/a1-headset.flac", "a1-headset.flac"),
                                                 ("audio/a2.flac", "a2.flac")]
    twins = [e.with_recordings([Recording(f"{d}/x.flac")]) for d, e in zip("ab", _examples())]
    assert [keys for keys, _ in gold_from_examples(twins, "audio").items] == [("a/x.flac",), ("b/x.flac",)]
    text = gold_from_examples(_examples(), "text")
    assert [keys for keys, _ in text.items] == [("slurp-1", "1"), ("slurp-2", "2"), ("corpus-fr-1",)]


def test_paired_bootstrap_api():
    right = {"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "ten"}]}
    wrong = {"scenario": "alarm", "action": "query", "entities": []}
    a = {"slurp-1": right, "slurp-2": {"scenario": "datetime", "action": "query", "entities": []}}
    b = {"slurp-1": wrong, "slurp-2": wrong}
    out = paired_bootstrap(_examples()[:2], a, b, seed=0)
    assert out["intent_accuracy"]["delta"] == 1.0 and out["intent_accuracy"]["p_value"] == 0.0
    assert out["slu_f1"]["a"] == 1.0 and out["slu_f1"]["b"] == 0.0


def test_massive_metrics_per_locale():
    gold = gold_from_examples(_examples(), "text")
    preds = {"slurp-1": {"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "ten"}]},
             "slurp-2": {"scenario": "datetime", "action": "query", "entities": [{"type": "date", "filler": "now"}]},
             "corpus-fr-1": {"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "dix heures"}]}}
    m = massive_metrics(gold, preds)
    assert m["locales"]["en-US"]["n"] == 2 and m["locales"]["fr-FR"]["n"] == 1
    assert m["locales"]["en-US"]["exact_match"] == 0.5  # slurp-2 has an extra slot
    assert m["locales"]["en-US"]["intent_accuracy"] == 1.0
    assert m["locales"]["en-US"]["slot_f1"] == pytest.approx(prf(1, 1, 0))
    assert m["locales"]["fr-FR"]["exact_match"] == 1.0
    assert m["overall"]["exact_match"] == pytest.approx(2 / 3)
    assert m["overall"]["slot_f1"] == pytest.approx(prf(2, 1, 0))
