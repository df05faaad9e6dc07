"""Evaluation: parse -> SLURP scorer with CIs, parse failures and per-locale metrics, prediction
files in SLURP format, and `slufit eval` on a trained run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slufit.cli import main as cli_main
from slufit.train.evaluate import eval_items, item_key, score

from test_train_support import make_corpus, make_examples, make_model, write_config


def test_score_counts_parse_failures_and_splits_locales(tmp_path):
    en = make_examples("en", 4, {0, 1, 2, 3}, tmp_path / "audio", "en-US")
    fr = make_examples("fr", 2, {0, 1}, tmp_path / "audio", "fr-FR")
    examples = en + fr
    items = eval_items(examples, [tmp_path / "x.jsonl"] * len(examples), "speech")
    assert len(items) == 6 and all(i.audio_path.is_file() for i in items)
    assert item_key(items[0]) == "audio/en-0.wav"
    gold = [json.dumps(i.example.label()) for i in items]
    texts = [gold[0], gold[1], "not json at all", '{"scenario": "alarm", "action": "wrong", "entities": []}',
             gold[4], gold[5]]
    lines, metrics = score(examples, items, texts)
    assert metrics["parse_failures"] == 1 and metrics["items"] == 6 and metrics["n"] == 6
    assert metrics["intent"]["f1"] == pytest.approx(4 / 6)
    assert set(metrics["ci"]) >= {"intent_accuracy", "slu_f1"}
    assert metrics["per_locale"]["fr-FR"]["intent"]["f1"] == 1.0
    assert metrics["per_locale"]["en-US"]["intent"]["f1"] == pytest.approx(0.5)
    assert metrics["per_locale"]["en-US"]["parse_failures"] == 1
    assert lines[0]["file"] == "audio/en-0.wav" and lines[0]["scenario"] == examples[0].scenario

    text_items = eval_items(examples, [tmp_path / "x.jsonl"] * len(examples), "text")
    lines, metrics = score(examples, text_items, [json.dumps(e.label()) for e in examples])
    assert lines[0]["slurp_id"] == "en-0" and metrics["intent"]["f1"] == 1.0 and metrics["parse_failures"] == 0


def test_slufit_eval_on_a_run_writes_slurp_predictions_and_metrics(tmp_path, capsys):
    from slufit.scoring.gold import read_predictions

    corpus = make_corpus(tmp_path / "corpus", n_train=8, train_speech=2, n_dev=2)
    cfg = write_config(tmp_path / "c.yaml", corpus, make_model(tmp_path / "model"), {"name": "text_only", "epochs": 1},
                       eval={"modalities": ["text"]})
    assert cli_main(["train", "--config", str(cfg)]) == 0
    run = tmp_path / "run"
    for modality, key in (("speech", "file"), ("text", "slurp_id")):
        assert cli_main(["eval", "--run", str(run), "--data", str(corpus["dev"]), "--modality", modality,
                         "--beams", "2"]) == 0
        folder = run / "eval" / f"dev-{modality}"
        lines = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
        assert len(lines) == 2 and all(key in line for line in lines)
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["beams"] == 2 and metrics["modality"] == modality and "ci" in metrics
        assert list(metrics["per_locale"]) == ["en-US"] and metrics["n"] == 2
        # The file reads back with the scorer's own SLURP prediction reader.
        assert len(read_predictions(folder / "predictions.jsonl", text=modality == "text")) == 2
    assert "intent" in capsys.readouterr().out
    assert cli_main(["eval", "--run", str(tmp_path / "nope"), "--data", str(corpus["dev"]), "--modality", "text"]) == 2


def test_headline_shows_both_intervals_from_the_scorer_keys():
    from slufit.train.evaluate import headline

    metrics = {"intent": {"f1": 0.5}, "slu_f1": {"f1": 0.25}, "n": 4, "parse_failures": 1,
               "ci": {"intent_accuracy": {"low": 0.4, "high": 0.6}, "slu_f1": {"low": 0.2, "high": 0.3}}}
    assert headline(metrics) == "intent 50.00 [40.00, 60.00], SLU-F1 25.00 [20.00, 30.00] (n=4, parse failures 1)"
