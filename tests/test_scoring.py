"""`slufit score` on the real SLURP test set and the official prediction files, with the SLURP
paper's published figures, plus edited prediction files whose effect is known exactly."""

import json
import time

import pytest

from slufit.cli import main
from slufit.data.example import Entity, Example, Recording, write_examples
from slufit.scoring.gold import read_gold, read_predictions
from slufit.scoring.score import report, score_gold

KEYS = ("precision", "recall", "f1")

# Reference figures (fractions, 4 decimals) of this scorer, which reproduces the published
# multi_hermit numbers (SLURP paper: intent accuracy 76.68, SLU-F1 69.53).
MULTI = {"scenario": (0.8373, 0.8373, 0.8373), "action": (0.7970, 0.7970, 0.7970),
         "intent": (0.7668, 0.7668, 0.7668), "entities": (0.6326, 0.6214, 0.6269),
         "entities_word": (0.6832, 0.6724, 0.6778), "entities_char": (0.7198, 0.7079, 0.7138),
         "slu_f1": (0.7010, 0.6897, 0.6953)}
GOOGLE = {"scenario": (0.8168, 0.8168, 0.8168), "action": (0.7658, 0.7658, 0.7658),
          "intent": (0.7341, 0.7341, 0.7341), "entities": (0.5899, 0.5704, 0.5800),
          "entities_word": (0.6497, 0.6309, 0.6401), "entities_char": (0.6920, 0.6707, 0.6812),
          "slu_f1": (0.6701, 0.6502, 0.6600)}
GOOGLE_MISSING_AS_WRONG = {"scenario": (0.7740, 0.7740, 0.7740), "intent": (0.6957, 0.6957, 0.6957),
                           "entities": (0.5899, 0.5452, 0.5667), "slu_f1": (0.6701, 0.6242, 0.6464)}
GOLD_TEXT = {"scenario": (0.9015, 0.9015, 0.9015), "action": (0.8699, 0.8699, 0.8699),
             "intent": (0.8484, 0.8484, 0.8484), "entities": (0.7926, 0.7715, 0.7819),
             "entities_word": (0.8215, 0.8006, 0.8109), "entities_char": (0.8275, 0.8063, 0.8168),
             "slu_f1": (0.8245, 0.8034, 0.8138)}


def score_json(capsys, *argv):
    assert main(["score", *map(str, argv), "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def assert_metrics(result, expected):
    for name, values in expected.items():
        assert tuple(round(result[name][k], 4) for k in KEYS) == values, name


def test_multi_hermit_matches_published_figures(shared_slurp, capsys):
    result, err = score_json(capsys, "--gold", shared_slurp / "test.jsonl",
                             "--pred", shared_slurp / "predictions/multi_hermit_predictions.jsonl")
    assert round(100 * result["intent"]["f1"], 2) == 76.68
    assert round(100 * result["slu_f1"]["f1"], 2) == 69.53
    assert_metrics(result, MULTI)
    assert (result["n"], result["missing"]) == (13077, 1)
    assert "1 of 13078 gold items have no prediction" in err
    assert "1016 predictions match no gold item" in err


def test_google_hermit_skips_or_counts_missing(shared_slurp, capsys):
    args = ("--gold", shared_slurp / "test.jsonl", "--pred", shared_slurp / "predictions/google_hermit_predictions.jsonl")
    result, err = score_json(capsys, *args)
    assert_metrics(result, GOOGLE)
    assert (result["n"], result["missing"]) == (12393, 685)
    assert "685 of 13078 gold items have no prediction (skipped" in err
    wrong, _ = score_json(capsys, *args, "--missing-as-wrong")
    assert_metrics(wrong, GOOGLE_MISSING_AS_WRONG)
    assert (wrong["n"], wrong["missing"]) == (13078, 685)


def test_gold_hermit_text_mode(shared_slurp, capsys):
    result, _ = score_json(capsys, "--gold", shared_slurp / "test.jsonl", "--load-gold",
                           "--pred", shared_slurp / "predictions/gold_hermit_predictions.jsonl", "--massive")
    assert_metrics(result, GOLD_TEXT)
    assert (result["n"], result["missing"]) == (2974, 0)
    massive = result["massive"]["locales"]["en-US"]
    assert massive["n"] == 2974
    assert round(massive["intent_accuracy"], 4) == 0.8484
    assert round(massive["slot_f1"]["f1"], 4) == 0.7819  # same multiset matching as span F1
    assert round(massive["exact_match"], 4) == 0.6701


def test_confidence_intervals_are_pinned_and_fast(shared_slurp):
    gold = read_gold(shared_slurp / "test.jsonl")
    scored = score_gold(gold, read_predictions(shared_slurp / "predictions/multi_hermit_predictions.jsonl"))
    start = time.perf_counter()
    ci = report(scored, ci=True, seed=0)["ci"]
    seconds = time.perf_counter() - start
    assert (round(ci["intent_accuracy"]["low"], 4), round(ci["intent_accuracy"]["high"], 4)) == (0.7521, 0.7820)
    assert (round(ci["slu_f1"]["low"], 4), round(ci["slu_f1"]["high"], 4)) == (0.6812, 0.7101)
    assert ci["resamples"] == 1000
    assert seconds < 5  # about 0.1-0.3 s; generous for a shared CPU


def test_compare_multi_against_google(shared_slurp, capsys):
    out, _ = score_json(capsys, "--gold", shared_slurp / "test.jsonl", "--missing-as-wrong", "--compare",
                        shared_slurp / "predictions/multi_hermit_predictions.jsonl",
                        shared_slurp / "predictions/google_hermit_predictions.jsonl")
    assert round(out["intent_accuracy"]["a"], 4) == 0.7667 and round(out["intent_accuracy"]["b"], 4) == 0.6957
    assert out["intent_accuracy"]["p_value"] == 0.0 and out["slu_f1"]["p_value"] == 0.0
    assert out["intent_accuracy"]["low"] > 0
    reverse, _ = score_json(capsys, "--gold", shared_slurp / "test.jsonl", "--missing-as-wrong", "--compare",
                            shared_slurp / "predictions/google_hermit_predictions.jsonl",
                            shared_slurp / "predictions/multi_hermit_predictions.jsonl")
    assert reverse["intent_accuracy"]["p_value"] == 1.0


def test_table_output(shared_slurp, capsys):
    assert main(["score", "--gold", str(shared_slurp / "test.jsonl"), "--load-gold", "--ci",
                 "--pred", str(shared_slurp / "predictions/gold_hermit_predictions.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "Intent (scenario_action)" in out and "84.84" in out and "81.38" in out
    assert "95% CI" in out


# --- edited prediction files: perfect predictions built from the raw gold, then changed ------

def perfect_predictions(shared_slurp):
    """Text-mode predictions equal to the gold, built straight from the raw SLURP lines."""
    preds = []
    for line in open(shared_slurp / "test.jsonl", encoding="utf-8"):
        obj = json.loads(line)
        words = [t["surface"].lower() for t in obj["tokens"]]
        preds.append({"slurp_id": str(obj["slurp_id"]), "scenario": obj["scenario"], "action": obj["action"],
                      "entities": [{"type": e["type"], "filler": " ".join(words[i] for i in e["span"])}
                                   for e in obj["entities"]]})
    return preds


def score_edited(shared_slurp, tmp_path, capsys, preds, *extra):
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in preds), encoding="utf-8")
    return score_json(capsys, "--gold", shared_slurp / "test.jsonl", "--load-gold", "--pred", path, *extra)[0]


def test_perfect_predictions_score_one(shared_slurp, tmp_path, capsys):
    result = score_edited(shared_slurp, tmp_path, capsys, perfect_predictions(shared_slurp))
    for name in MULTI:
        assert result[name] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}, name


def test_dropped_items(shared_slurp, tmp_path, capsys):
    preds = perfect_predictions(shared_slurp)
    dropped_entities = sum(len(p["entities"]) for p in preds[:10])
    n_entities = sum(len(p["entities"]) for p in preds)
    skipped = score_edited(shared_slurp, tmp_path, capsys, preds[10:])
    assert (skipped["n"], skipped["missing"]) == (2964, 10)
    assert skipped["intent"]["f1"] == 1.0 and skipped["slu_f1"]["f1"] == 1.0
    wrong = score_edited(shared_slurp, tmp_path, capsys, preds[10:], "--missing-as-wrong")
    assert wrong["intent"]["f1"] == pytest.approx(2964 / 2974)
    assert wrong["entities"]["recall"] == pytest.approx((n_entities - dropped_entities) / n_entities)
    assert wrong["entities"]["precision"] == 1.0


def test_added_entity_of_unknown_type(shared_slurp, tmp_path, capsys):
    preds = perfect_predictions(shared_slurp)
    n_entities = sum(len(p["entities"]) for p in preds)
    for p in preds:
        p["entities"].append({"type": "not_a_type", "filler": "x"})
    result = score_edited(shared_slurp, tmp_path, capsys, preds)
    for name in ("entities", "entities_word", "entities_char", "slu_f1"):
        assert result[name]["precision"] == pytest.approx(n_entities / (n_entities + 2974)), name
        assert result[name]["recall"] == 1.0


def test_dropped_and_changed_entities(shared_slurp, tmp_path, capsys):
    preds = perfect_predictions(shared_slurp)
    n_entities = sum(len(p["entities"]) for p in preds)
    with_entities = [p for p in preds if p["entities"]]
    for p in with_entities[:100]:
        p["entities"].pop(0)
    # Append one word to every filler of the next 100 utterances: word distance 1/len(words), char
    # distance 6/(len+6) (" extra" is 6 insertions), and no exact span matches among them.
    changed = [e for p in with_entities[100:200] for e in p["entities"]]
    word_d = sum(1 / len(e["filler"].split()) for e in changed)
    char_d = sum(6 / (len(e["filler"]) + 6) for e in changed)
    for e in changed:
        e["filler"] += " extra"
    result = score_edited(shared_slurp, tmp_path, capsys, preds)
    tp = n_entities - 100
    assert result["entities"]["precision"] == pytest.approx((tp - len(changed)) / tp)
    assert result["entities"]["recall"] == pytest.approx((tp - len(changed)) / n_entities)
    assert result["entities_word"]["precision"] == pytest.approx(tp / (tp + word_d))
    assert result["entities_word"]["recall"] == pytest.approx(tp / (tp + word_d + 100))
    assert result["entities_char"]["recall"] == pytest.approx(tp / (tp + char_d + 100))
    slu = 2 * (2 * tp) / (2 * (2 * tp) + (word_d + char_d) + (word_d + char_d + 200))
    assert result["slu_f1"]["f1"] == pytest.approx(slu)


PINNED_UPPER = [0.0, 0.5, 0.5126, 0.5062]


def test_upper_cased_fillers_are_wrong_as_in_the_toolkit(shared_slurp, tmp_path, capsys):
    preds = perfect_predictions(shared_slurp)
    entities = [e for p in preds for e in p["entities"]]
    unchanged = sum(e["filler"].upper() == e["filler"] for e in entities)
    for e in entities:
        e["filler"] = e["filler"].upper()
    result = score_edited(shared_slurp, tmp_path, capsys, preds)
    assert result["entities"]["f1"] == pytest.approx(unchanged / len(entities))
    assert result["intent"]["f1"] == 1.0
    # Every filler is one gold entity of its type paired with itself; each word that changes is a
    # substitution, each character that changes is one edit over the filler's length.
    n = len(entities)
    word_d = sum(sum(w != w.lower() for w in e["filler"].split()) / len(e["filler"].split()) for e in entities)
    char_d = sum(sum(c != c.lower() for c in e["filler"]) / len(e["filler"]) for e in entities)
    assert result["entities_word"]["f1"] == pytest.approx(n / (n + word_d))
    assert result["entities_char"]["f1"] == pytest.approx(n / (n + char_d))
    assert result["slu_f1"]["f1"] == pytest.approx(2 * n / (2 * n + word_d + char_d))
    assert [round(result[k]["f1"], 4) for k in ("entities", "entities_word", "entities_char", "slu_f1")] == PINNED_UPPER


def test_changed_scenario(shared_slurp, tmp_path, capsys):
    preds = perfect_predictions(shared_slurp)
    for p in preds[:100]:
        p["scenario"] = "wrong"
    result = score_edited(shared_slurp, tmp_path, capsys, preds)
    assert result["scenario"]["f1"] == pytest.approx(2874 / 2974)
    assert result["intent"]["f1"] == pytest.approx(2874 / 2974)
    assert result["action"]["f1"] == 1.0


# --- errors and canonical gold ---------------------------------------------------------------

def test_malformed_prediction_line_names_file_and_line(shared_slurp, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"scenario": "a", "action": "b", "entities": [], "file": "x.flac"}\n'
                    '{"scenario": "a", "action": "b", "entities": [{"type": "date"}], "file": "y.flac"}\n')
    assert main(["score", "--gold", str(shared_slurp / "test.jsonl"), "--pred", str(path)]) == 2
    assert f"{path}:2: entities[0] must be an object with string 'type' and 'filler'" in capsys.readouterr().err
    path.write_text('{"scenario": "a", "action": "b", "entities": [], "file": "x.flac"}\n{"scenario": \n')
    assert main(["score", "--gold", str(shared_slurp / "test.jsonl"), "--pred", str(path)]) == 2
    assert f"{path}:2: invalid JSON" in capsys.readouterr().err


def test_keys_that_match_nothing_fail_with_a_hint(shared_slurp, capsys):
    assert main(["score", "--gold", str(shared_slurp / "test.jsonl"),
                 "--pred", str(shared_slurp / "predictions/gold_hermit_predictions.jsonl")]) == 2
    assert "use --load-gold" in capsys.readouterr().err


def test_canonical_gold_file(tmp_path, capsys):
    examples = [
        Example("slurp-7", "en-US", "wake me up at ten", "alarm", "set", "alarm_set", (Entity("time", "ten"),),
                (Recording("audio/r1.flac"), Recording("audio/r2.flac"))),
        Example("slurp-8", "en-US", "stop", "audio", "volume_mute", "audio_volume_mute", (), (Recording("audio/r3.flac"),)),
    ]
    gold = tmp_path / "gold.jsonl"
    write_examples(gold, examples)
    right = {"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "ten"}]}
    pred = tmp_path / "pred.jsonl"
    # Audio keys: the recording path or its file name.
    pred.write_text(json.dumps({**right, "file": "audio/r1.flac"}) + "\n" + json.dumps({**right, "file": "r3.flac"}) + "\n")
    result, err = score_json(capsys, "--gold", gold, "--pred", pred)
    assert (result["n"], result["missing"]) == (2, 1)
    assert result["intent"]["f1"] == 0.5
    assert "first: audio/r2.flac" in err
    # Text keys: the example id, or the number of a slurp-<n> id.
    pred.write_text(json.dumps({**right, "slurp_id": "7"}) + "\n" + json.dumps({**right, "slurp_id": "slurp-8"}) + "\n")
    result, _ = score_json(capsys, "--gold", gold, "--pred", pred, "--load-gold")
    assert (result["n"], result["missing"]) == (2, 0)
    assert result["intent"]["f1"] == 0.5
    assert result["entities"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3)}


def test_malformed_gold_line_names_file_and_line(shared_slurp, tmp_path, capsys):
    lines = (shared_slurp / "test.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    broken = json.loads(lines[2])
    del broken["tokens"]
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(lines[:2] + [json.dumps(broken)]) + "\n", encoding="utf-8")
    pred = shared_slurp / "predictions/multi_hermit_predictions.jsonl"
    assert main(["score", "--gold", str(gold), "--pred", str(pred)]) == 2
    assert f"{gold}:3: not a SLURP example (KeyError: 'tokens')" in capsys.readouterr().err


def test_verbatim_fillers_are_whole_words_of_the_transcript():
    from slufit.scoring.score import verbatim

    assert verbatim("Seven  AM", "wake me up at seven am please")
    assert not verbatim("seven", "wake me up at seventy")  # whole words only
    assert not verbatim("hotel california", "play cafe del mar by beyonce") and not verbatim("", "anything")


def test_verbatim_filler_share_pinned_on_the_official_predictions(shared_slurp, capsys):
    """Issue 21 item 4: the share of predicted fillers found verbatim in what was said, reported by `slufit score`.
    Text input (gold transcripts) keeps most fillers verbatim; audio input (an ASR's errors) far fewer."""
    text, _ = score_json(capsys, "--gold", shared_slurp / "test.jsonl", "--load-gold",
                         "--pred", shared_slurp / "predictions/gold_hermit_predictions.jsonl")
    assert text["verbatim_fillers"]["predicted"] == 2748 and text["verbatim_fillers"]["verbatim"] == 2640
    assert round(100 * text["verbatim_fillers"]["share"], 2) == 96.07
    audio, _ = score_json(capsys, "--gold", shared_slurp / "test.jsonl",
                          "--pred", shared_slurp / "predictions/multi_hermit_predictions.jsonl")
    assert (audio["verbatim_fillers"]["predicted"], audio["verbatim_fillers"]["verbatim"]) == (11685, 9477)
    assert main(["score", "--gold", str(shared_slurp / "test.jsonl"), "--load-gold",
                 "--pred", str(shared_slurp / "predictions/gold_hermit_predictions.jsonl")]) == 0
    assert "found verbatim in the transcript: 2640 of 2748 (96.07 %)" in capsys.readouterr().out
