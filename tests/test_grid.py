"""Grid expansion, run naming, train configs of runs, and resumability (with a stand-in trainer)."""

from __future__ import annotations

import textwrap

import pytest

from test_grid_fixtures import EVAL, write_run
from slufit.errors import SlufitError
from slufit.files import read_json
from slufit.grid.runner import build_run_config, run_grid, run_state
from slufit.grid.spec import RUN_FILE, RunSpec, grid_from_dict, load_grid

MONO = {
    "name": "mono", "schemes": ["text_only", "mix", "curriculum"], "fractions": [0, 2, 5, 100],
    "seeds": [0, 1], "locales": ["en-US"],
    "data": {"train": "data/{locale}/train.jsonl", "test": "data/{locale}/test.jsonl"},
}


def test_expansion_and_names(tmp_path):
    grid = grid_from_dict(MONO, out=tmp_path)
    names = [r.name for r in grid.runs()]
    # text_only once per seed at 0 %; speech schemes at every fraction above 0.
    assert len(names) == 2 + 2 * 3 * 2
    assert names[:2] == ["text_only-p00-s0-en-US", "text_only-p00-s1-en-US"]
    assert "mix-p05-s0-en-US" in names and "curriculum-p100-s1-en-US" in names
    assert not any(n.startswith("mix-p00") for n in names)
    assert len(set(names)) == len(names)


def test_crosslingual_expansion():
    grid = grid_from_dict({"schemes": ["mix"], "fractions": [100], "seeds": [0],
                           "crosslingual": {"pairs": [{"source": "fr-FR", "target": "en-US"}], "target_speech": [0, 16]}})
    assert [r.name for r in grid.runs()] == ["xl-mix-p100-t0-s0-fr-FR-en-US", "xl-mix-p100-t16-s0-fr-FR-en-US"]


def test_run_spec_round_trips():
    run = RunSpec("curriculum", 2.5, 3, "en-US", "fr-FR", 8)
    assert RunSpec.from_dict(run.to_dict()) == run
    assert run.name == "xl-curriculum-p2.5-t8-s3-fr-FR-en-US"


@pytest.mark.parametrize("bad, message", [
    ({"schemes": ["magic"]}, "unknown scheme"),
    ({"fractions": [150]}, "percentages"),
    ({"locales": ["english"]}, "locale must look like"),
    ({"colour": "red"}, "unknown key"),
    ({"locales": []}, "exactly one"),
])
def test_bad_grid_configs_are_user_errors(bad, message):
    with pytest.raises(SlufitError, match=message):
        grid_from_dict({**MONO, **bad})


def test_load_grid_reads_yaml(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent("""\
        name: g
        out: runs/g
        schemes: [mix]
        fractions: [5]
        seeds: [0]
        locales: [fr-FR]
        data: {train: "d/{locale}/train.jsonl", test: "d/{locale}/test.jsonl"}
    """))
    grid = load_grid(path)
    assert str(grid.data_file("train", "fr-FR")) == "d/fr-FR/train.jsonl"  # relative to the working directory
    assert [r.name for r in grid.runs()] == ["mix-p05-s0-fr-FR"]


def test_run_config_carries_the_grid_point(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = grid_from_dict({**MONO, "train": {"overrides": {"train": {"lr": 1e-3}, "eval.beams": 1}}}, out=tmp_path,
                          source_file=tmp_path / "grid.yaml")
    config = build_run_config(grid, RunSpec("curriculum", 5.0, 1, "en-US"), tmp_path / "run")
    assert config.scheme.name == "curriculum"
    assert config.data.speech_fraction == pytest.approx(0.05)
    assert config.train.seed == 1 and config.data.budget_seed == 1
    assert config.train.lr == 1e-3 and config.eval.beams == 1
    assert config.data.train == [str(tmp_path / "data" / "en-US" / "train.jsonl")]
    xl = build_run_config(grid, RunSpec("mix", 100.0, 0, "en-US", "fr-FR", 16), tmp_path / "xl")
    assert (xl.scheme.name, xl.scheme.order, xl.scheme.source_locale) == ("crosslingual", "mix", "fr-FR")
    assert xl.scheme.target_locales == ["en-US"] and xl.scheme.target_speech_count == 16
    assert [p.split("/")[-2] for p in xl.data.train] == ["fr-FR", "en-US"]
    assert [p.split("/")[-2] for p in xl.data.test] == ["en-US", "fr-FR"]


class FakeTrainer:
    """Stands in for slufit.train: writes a finished run folder whose scores follow the speech fraction."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, resume):
        from pathlib import Path

        run_dir = Path(config.run_dir)
        run = RunSpec.from_dict(read_json(run_dir / RUN_FILE))
        self.calls.append((run.name, resume))
        score = 0.4 + 0.5 * run.fraction / 100
        write_run(run_dir.parent, run, score, score - 0.1, seconds=5.0)


def test_run_grid_trains_then_skips_finished_and_resumes_partial(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = grid_from_dict({**MONO, "seeds": [0], "fractions": [5, 100]}, out=tmp_path / "g",
                          source_file=tmp_path / "grid.yaml")
    trainer = FakeTrainer()
    report = run_grid(grid, train_fn=trainer, log=lambda line: None)
    assert len(trainer.calls) == 5 and not any(resume for _, resume in trainer.calls)
    assert report.is_file() and (tmp_path / "g" / "results.csv").is_file() and (tmp_path / "g" / "grid.yaml").is_file()
    assert read_json(tmp_path / "g" / "mix-p05-s0-en-US" / RUN_FILE)["test_files"] == [
        str(tmp_path / "data" / "en-US" / "test.jsonl")]

    # Again: every run is finished, nothing trains.
    trainer.calls.clear()
    run_grid(grid, train_fn=trainer, log=lambda line: None)
    assert trainer.calls == []

    # An interrupted run (checkpoint, no summary) resumes; only it trains.
    partial = tmp_path / "g" / "mix-p100-s0-en-US"
    (partial / "summary.json").unlink()
    (partial / "checkpoints" / "last").mkdir(parents=True)
    assert run_state(partial) == "partial"
    run_grid(grid, train_fn=trainer, log=lambda line: None)
    assert trainer.calls == [("mix-p100-s0-en-US", True)]
    assert "90.00" in report.read_text()  # mix 100 %: 0.4 + 0.5


def test_dry_run_trains_nothing(tmp_path):
    grid = grid_from_dict(MONO, out=tmp_path / "g")
    lines = []
    assert run_grid(grid, dry_run=True, train_fn=FakeTrainer(), log=lines.append) is None
    assert "14 runs" in lines[0] and lines[1].endswith(": new")


def test_fake_run_eval_name_is_primary(tmp_path):
    grid = grid_from_dict({**MONO, "seeds": [0], "fractions": [100], "schemes": ["mix"]}, out=tmp_path / "g")
    run_grid(grid, train_fn=FakeTrainer(), log=lambda line: None)
    assert f"`{EVAL}` eval set" in (tmp_path / "g" / "report.md").read_text()


def test_cli_errors_are_one_line(tmp_path, capsys):
    from slufit.cli import main

    assert main(["grid"]) == 2
    assert "give --config" in capsys.readouterr().err
    assert main(["grid", "report", str(tmp_path / "nowhere")]) == 2
    assert "no such grid folder" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("schemes: [magic]\nlocales: [en-US]\n")
    assert main(["grid", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_cli_dry_run_lists_runs(tmp_path, capsys):
    import yaml

    from slufit.cli import main

    (tmp_path / "g.yaml").write_text(yaml.safe_dump({**MONO, "out": str(tmp_path / "g")}))
    assert main(["grid", "--config", str(tmp_path / "g.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "14 runs" in out and "curriculum-p100-s1-en-US: new" in out


def test_extra_seeds_run_the_key_cells_again_after_every_other_run():
    from slufit.grid.spec import grid_from_dict

    base = {"schemes": ["text_only", "mix", "curriculum"], "fractions": [2, 5, 100], "seeds": [0], "locales": ["en-US"]}
    before = [r.name for r in grid_from_dict(base).runs()]
    grid = grid_from_dict({**base, "extra_seeds": {"seeds": [1, 2], "cells": {"text_only": [0], "mix": [2, 100]}}})
    names = [r.name for r in grid.runs()]
    assert names[:len(before)] == before, "existing runs keep their index"
    assert names[len(before):] == ["text_only-p00-s1-en-US", "mix-p02-s1-en-US", "mix-p100-s1-en-US",
                                   "text_only-p00-s2-en-US", "mix-p02-s2-en-US", "mix-p100-s2-en-US"]
    assert grid_from_dict(grid.to_dict()).runs() == grid.runs()  # the report's copy of the grid reloads the same
    for extra, message in (({"seeds": [1], "cells": {"curriculum": [50]}}, "curriculum: fraction"),
                           ({"seeds": [1], "cells": {"ramp": [2]}}, "not in this grid's schemes"),
                           ({"seeds": [1]}, "needs 'cells'")):
        with pytest.raises(SlufitError, match=message):
            grid_from_dict({**base, "extra_seeds": extra})


def test_demo_key_seeds_add_seeds_to_the_verdicts_cells_only(tmp_path):
    from slufit.demo import FULL, QUICK, demo_grid

    mono = demo_grid("demo-mono", tmp_path, tmp_path / "data", tmp_path / "model", FULL, [0], key_seeds=3)
    runs = mono.runs()
    assert len(runs) == 9 + 2 * 4
    seeds = {}
    for r in runs:
        seeds.setdefault((r.scheme, r.fraction), set()).add(r.seed)
    assert {k for k, v in seeds.items() if v == {0, 1, 2}} == {("text_only", 0.0), ("mix", 2.0), ("mix", 5.0),
                                                                ("mix", 100.0)}
    assert all(v == {0} for k, v in seeds.items() if k[0] == "curriculum" or k == ("mix", 10.0))
    xl = demo_grid("demo-crosslingual", tmp_path, tmp_path / "data", tmp_path / "model", FULL, [0], key_seeds=3)
    assert {r.seed for r in xl.runs()} == {0}
    quick = demo_grid("demo-mono", tmp_path, tmp_path / "data", tmp_path / "model", QUICK, [0], key_seeds=2)
    assert sorted(r.name for r in quick.runs() if r.seed == 1) == ["mix-p100-s1-en-US", "text_only-p00-s1-en-US"]
