"""The report and plots, built from run folders written by the test."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest

from test_grid_fixtures import EVAL, gold_examples, predictions, write_gold, write_run
from slufit.errors import SlufitError
from slufit.grid.report import build_report
from slufit.grid.spec import RunSpec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (scheme, fraction) -> (intent acc, SLU-F1), fractions in [0, 1] as metrics.json stores them.
SCORES = {
    ("text_only", 0.0): (0.50, 0.40),
    ("mix", 2.0): (0.60, 0.48),
    ("curriculum", 2.0): (0.70, 0.56),
    ("mix", 100.0): (0.90, 0.80),
    ("curriculum", 100.0): (0.88, 0.78),
}


def _grid(tmp_path):
    grid = tmp_path / "grid"
    for (scheme, fraction), (intent, slu) in SCORES.items():
        write_run(grid, RunSpec(scheme, fraction, 0, "en-US"), intent, slu, seconds=30.0)
    return grid


def _is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > 2000


def test_report_numbers_equal_the_inputs(tmp_path):
    grid = _grid(tmp_path)
    report = build_report(grid).read_text()
    # Table 1: intent 70.00 [68.00, 72.00], SLU-F1 56.00 [53.00, 59.00]; share of mix 100 % = 56 / 80 = 70.0 %.
    row = next(line for line in report.splitlines() if line.startswith("| curriculum | 2 % |"))
    assert "70.00 [68.00, 72.00]" in row
    assert "56.00 [53.00, 59.00]" in row
    assert "51.00" in row  # entity F1 = SLU-F1 - 5 points
    assert "70.0 %" in row
    assert "30 s" in row
    text_row = next(line for line in report.splitlines() if line.startswith("| text-only | 0 % |"))
    assert "50.0 %" in text_row  # 40 / 80
    # The reference study section: the study's shares and ours.
    assert "83.60" in report and "76.75" in report
    study_row = next(line for line in report.splitlines() if line.startswith("| curriculum 2 % | 85.74"))
    assert "97.3 % / 95.6 %" in study_row  # 85.74/88.13, 73.35/76.75
    assert "77.8 % / 70.0 %" in study_row  # ours: 70/90, 56/80
    assert study_row.endswith("| -25.6 |")  # 70.0 - 95.6
    assert "## Reproduction" in report and "abc1234" in report
    assert (grid / "slu_f1_vs_fraction.png").exists()
    # The regime verdict: text-only 50/90 = 55.6 % of the intent accuracy (< 80 %), best at 2 % 56/80 = 70.0 %.
    verdict = next(line for line in report.splitlines() if line.startswith("**Regime:**"))
    assert "not reproduced on every count" in verdict
    assert "text-only reaches 55.6 %" in verdict and "(curriculum) reaches 70.0 %" in verdict


def test_regime_verdict_when_text_carries_over():
    from slufit.grid.regime import regime_verdict
    from slufit.grid.report import Cell

    def cell(scheme, fraction, intent, slu):
        return Cell(scheme, fraction, [0], {"intent_acc": intent, "slu_f1": slu}, {}, 0, 1.0)

    cells = [cell("text_only", 0.0, 80.0, 70.0), cell("mix", 2.0, 84.0, 74.0), cell("curriculum", 2.0, 85.0, 75.0),
             cell("mix", 5.0, 86.0, 76.0), cell("mix", 100.0, 90.0, 80.0)]
    verdict = regime_verdict(cells, "mix")
    assert verdict.startswith("**Regime:** reproduced:")
    assert "88.9 %" in verdict and "93.8 %" in verdict and "95.0 %" in verdict
    assert regime_verdict([cell("mix", 2.0, 84.0, 74.0)], "mix") is None  # no 100 % reference
    assert "not measurable" in regime_verdict([cell("text_only", 0.0, 0.0, 0.0), cell("mix", 100.0, 1.0, 0.0)], "mix")


def test_results_csv_has_one_row_per_run(tmp_path):
    grid = _grid(tmp_path)
    build_report(grid)
    with open(grid / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(SCORES)
    got = {(r["scheme"], float(r["fraction"])): (float(r["intent_acc"]), float(r["slu_f1"])) for r in table}
    assert got == {k: (round(100 * i, 2), round(100 * s, 2)) for k, (i, s) in SCORES.items()}
    row = next(r for r in table if r["scheme"] == "mix" and r["fraction"] == "2")
    assert (row["slu_f1_lo"], row["slu_f1_hi"], row["eval"], row["train_seconds"]) == ("45.00", "51.00", EVAL, "30.00")
    assert row["name"] == "mix-p02-s0-en-US"


def test_plots_are_valid_png(tmp_path):
    grid = _grid(tmp_path)
    build_report(grid)
    assert _is_png(grid / "slu_f1_vs_fraction.png")


def test_seeds_are_averaged(tmp_path):
    grid = tmp_path / "grid"
    write_run(grid, RunSpec("mix", 5.0, 0, "en-US"), 0.60, 0.50)
    write_run(grid, RunSpec("mix", 5.0, 1, "en-US"), 0.70, 0.60)
    report = build_report(grid).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| direct mixing | 5 % |"))
    assert "| 2 |" in row  # the seed count
    assert "65.00 ±7.07 [63.00, 67.00]" in row  # mean, sd across seeds, mean of the bounds


def test_unfinished_runs_are_left_out(tmp_path):
    grid = _grid(tmp_path)
    write_run(grid, RunSpec("mix", 5.0, 0, "en-US"), 0.1, 0.1, done=False)
    build_report(grid)
    assert "mix-p05-s0-en-US" not in (grid / "results.csv").read_text()


def test_empty_grid_is_a_user_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SlufitError, match="no finished run"):
        build_report(tmp_path / "empty")


def test_curriculum_vs_mix_uses_paired_bootstrap_on_prediction_files(tmp_path):
    examples = gold_examples(40)
    gold = write_gold(tmp_path / "test.jsonl", examples)
    grid = tmp_path / "grid"
    # Curriculum right on 36 of 40, mixing on 20: the paired test must find curriculum better.
    write_run(grid, RunSpec("mix", 5.0, 0, "en-US"), 0.5, 0.5, gold=gold, prediction_lines=predictions(examples, 20))
    write_run(grid, RunSpec("curriculum", 5.0, 0, "en-US"), 0.9, 0.9, gold=gold,
              prediction_lines=predictions(examples, 36))
    report = build_report(grid).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| en-US | 5 % | 0 |"))
    assert "+40.00" in row and "< 0.001" in row and "yes (p < 0.05)" in row


def test_entity_f1_interval_from_predictions_and_gold(tmp_path):
    """The scorer gives no entity-F1 CI; the report bootstraps one from the saved predictions and the gold file."""
    examples = gold_examples(40)
    gold = write_gold(tmp_path / "test.jsonl", examples)
    grid = tmp_path / "grid"
    # 20 of 40 right, each example one entity: span TP 20, FP 20, FN 20 -> entity F1 exactly 50 %.
    write_run(grid, RunSpec("mix", 5.0, 0, "en-US"), 0.5, 0.5, entity=0.5, gold=gold,
              prediction_lines=predictions(examples, 20))
    build_report(grid)
    with open(grid / "results.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    lo, hi = float(row["entity_f1_lo"]), float(row["entity_f1_hi"])
    assert row["entity_f1"] == "50.00"
    assert 30 < lo < 50 < hi < 70


def test_curriculum_vs_mix_without_gold_says_so(tmp_path):
    grid = tmp_path / "grid"
    write_run(grid, RunSpec("mix", 5.0, 0, "en-US"), 0.5, 0.5)
    write_run(grid, RunSpec("curriculum", 5.0, 0, "en-US"), 0.6, 0.55)
    report = build_report(grid).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| en-US | 5 % | 0 |"))
    assert "+10.00" in row and "not tested" in row


def test_crosslingual_grid_gets_locale_bars(tmp_path):
    grid = tmp_path / "grid"
    # One eval set holding both locales; metrics.json splits it per locale.
    for tspeech, (en, fr) in {0: (0.3, 0.8), 8: (0.6, 0.8)}.items():
        write_run(grid, RunSpec("mix", 100.0, 0, "en-US", "fr-FR", tspeech), 0.55, 0.55,
                  per_locale={"en-US": (en, en), "fr-FR": (fr, fr)})
    report = build_report(grid).read_text()
    assert "## Cross-lingual: per-locale results" in report
    row = next(line for line in report.splitlines() if line.startswith("| direct mixing 100 %, 8 en-US speech"))
    assert "60.00 / 60.00 [57.00, 63.00]" in row and "80.00 / 80.00 [77.00, 83.00]" in row
    # Table 1 of a cross-lingual run shows its target locale (en-US), not the whole eval set.
    table_row = next(line for line in report.splitlines() if line.startswith("| direct mixing | 100 % |")
                     and "30.00" in line)
    assert "55.00" not in table_row
    assert _is_png(grid / "slu_f1_by_locale.png")


def test_grid_report_command_on_copied_in_folders(tmp_path):
    """Folders trained elsewhere, copied into a fresh grid folder, are gathered by `slufit grid report`."""
    elsewhere = _grid(tmp_path)
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    for run_dir in elsewhere.iterdir():
        shutil.copytree(run_dir, gathered / run_dir.name)
    done = subprocess.run([sys.executable, "-m", "slufit.cli", "grid", "report", str(gathered)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (gathered / "report.md").is_file() and (gathered / "results.csv").is_file()
    assert _is_png(gathered / "slu_f1_vs_fraction.png")
    assert "56.00 [53.00, 59.00]" in (gathered / "report.md").read_text()


def test_plain_train_run_folders_are_placed_from_their_config(tmp_path):
    """A run folder from `slufit train` (no grid_run.json) is placed by its config.yaml."""
    import yaml

    from slufit.grid.spec import RUN_FILE

    grid = _grid(tmp_path)
    run_dir = write_run(grid, RunSpec("mix", 25.0, 3, "en-US"), 0.8, 0.7)
    (run_dir / RUN_FILE).unlink()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({
        "scheme": {"name": "mix"}, "train": {"seed": 3},
        "data": {"speech_fraction": 0.25, "train": [str(tmp_path / "missing.jsonl")]}}))
    build_report(grid)
    with open(grid / "results.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["fraction"] == "25")
    assert (row["scheme"], row["seed"], row["slu_f1"]) == ("mix", "3", "70.00")
