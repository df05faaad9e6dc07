"""The regime verdict rests on intervals over test utterances and seeds (slufit.grid.regime), from run
folders with real prediction files scored against a gold test file."""

from __future__ import annotations

import pytest

from test_grid_fixtures import gold_examples, predictions, write_gold, write_run
from slufit.grid.regime import regime_verdict, share_bootstrap
from slufit.grid.report import Cell, build_report, make_cells
from slufit.grid.results import gather
from slufit.grid.spec import RunSpec

N = 200  # test utterances


def _grid(tmp_path, correct: dict[tuple[str, float], list[int]]):
    """A grid whose run (scheme, fraction, seed i) predicts the first correct[(scheme, fraction)][i] items right."""
    examples = gold_examples(N)
    gold = write_gold(tmp_path / "test.jsonl", examples)
    grid = tmp_path / "grid"
    for (scheme, fraction), per_seed in correct.items():
        for seed, right in enumerate(per_seed):
            write_run(grid, RunSpec(scheme, fraction, seed, "en-US"), right / N, right / N, gold=gold,
                      prediction_lines=predictions(examples, right))
    return grid


def _verdict(grid) -> str:
    results = gather(grid)
    return regime_verdict(make_cells(results, "test-speech"), "mix", share_bootstrap(results, "test-speech"))


FULL = [200, 200, 200]


def test_reproduced_when_every_interval_clears_its_target(tmp_path):
    grid = _grid(tmp_path, {("text_only", 0.0): [190, 192, 194], ("mix", 2.0): [196, 197, 198],
                            ("mix", 5.0): [197, 198, 199], ("mix", 100.0): FULL})
    verdict = _verdict(grid)
    assert verdict.startswith("**Regime:** reproduced"), verdict
    assert "3 seed(s) per cell" in verdict
    # text-only: 192 / 200 = 96.0 % of the intent accuracy, with an interval.
    assert "text-only reaches 96.0 % [" in verdict and "target >= 80 %: met" in verdict
    # The report carries the same line.
    report = build_report(grid).read_text()
    assert verdict in report


def test_not_established_when_a_target_lies_inside_its_interval(tmp_path):
    # 2 %: about 91 % of the full SLU-F1, with a wide seed spread: 90 % lies inside the interval.
    grid = _grid(tmp_path, {("text_only", 0.0): [190, 192, 194], ("mix", 2.0): [170, 192, 186],
                            ("mix", 100.0): FULL})
    verdict = _verdict(grid)
    assert verdict.startswith("**Regime:** not established"), verdict
    assert "(target >= 90 %: open)" in verdict


def test_not_reproduced_when_an_interval_stays_under_its_target(tmp_path):
    grid = _grid(tmp_path, {("text_only", 0.0): [190, 192, 194], ("mix", 2.0): [120, 125, 130],
                            ("mix", 100.0): FULL})
    verdict = _verdict(grid)
    assert "not reproduced on every count" in verdict and "(target >= 90 %: missed)" in verdict


def test_the_seed_spread_widens_the_interval(tmp_path):
    """Same mean, one cell steady across seeds, the other not: the second interval is wider (seeds are resampled,
    not only test items)."""
    steady = _grid(tmp_path / "steady", {("mix", 2.0): [180, 180, 180], ("mix", 100.0): FULL})
    spread = _grid(tmp_path / "spread", {("mix", 2.0): [160, 180, 200], ("mix", 100.0): FULL})
    width = {}
    for name, grid in (("steady", steady), ("spread", spread)):
        low, high = share_bootstrap(gather(grid), "test-speech")(("mix", 2.0), ("mix", 100.0), "intent_acc")
        assert low < 90.0 < high
        width[name] = high - low
    assert width["spread"] > 1.5 * width["steady"], width


def test_without_prediction_files_the_verdict_says_it_rests_on_point_estimates(tmp_path):
    def cell(scheme, fraction, intent, slu):
        return Cell(scheme, fraction, [0], {"intent_acc": intent, "slu_f1": slu}, {}, 0, 1.0)

    cells = [cell("text_only", 0.0, 80.0, 70.0), cell("mix", 2.0, 84.0, 74.0), cell("mix", 100.0, 90.0, 80.0)]
    verdict = regime_verdict(cells, "mix")
    assert verdict.startswith("**Regime:** reproduced") and "point estimates over 1 seed(s)" in verdict
    grid = tmp_path / "g"
    write_run(grid, RunSpec("mix", 2.0, 0, "en-US"), 0.8, 0.7)  # metrics only, no predictions
    write_run(grid, RunSpec("mix", 100.0, 0, "en-US"), 0.9, 0.8)
    assert share_bootstrap(gather(grid), "test-speech")(("mix", 2.0), ("mix", 100.0), "slu_f1") is None
