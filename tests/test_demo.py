"""`slufit demo`: the combined report (fast), and the whole job end to end with --quick (slow)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_grid_fixtures import write_run
from slufit.cli import main
from slufit.demo import FULL, GRIDS, QUICK, combined_report, demo_grid
from slufit.grid.report import build_report
from slufit.grid.spec import RunSpec


def test_combined_report_embeds_each_grid_report(tmp_path):
    mono = tmp_path / "mono"
    write_run(mono, RunSpec("text_only", 0.0, 0, "en-US"), 0.5, 0.4)
    write_run(mono, RunSpec("mix", 100.0, 0, "en-US"), 0.9, 0.8)
    build_report(mono)
    report = combined_report(tmp_path, {"Monolingual (en-US)": mono, "Missing": tmp_path / "nothing"}, QUICK, [0],
                             {"corpus": 1.0}).read_text()
    assert report.startswith("# slufit demo")
    assert "## Monolingual (en-US): mono" in report
    assert "### Results by speech fraction and scheme" in report  # headings one level down
    assert "](mono/slu_f1_vs_fraction.png)" in report  # image links still resolve from OUT
    assert "80.00 [77.00, 83.00]" in report


def test_full_sizes_reach_every_run_config(tmp_path):
    """What FULL says is what each of the demo's runs trains with (no weights loaded, nothing trained)."""
    from slufit.grid.runner import build_run_config

    configs = {}
    for name in GRIDS:
        grid = demo_grid(name, tmp_path, tmp_path / "data", tmp_path / "model", FULL, [0])
        configs[name] = [build_run_config(grid, run, tmp_path / run.name) for run in grid.runs()]
    mono, xl = configs["demo-mono"], configs["demo-crosslingual"]
    assert len(mono) == 9 and len(xl) == 2
    for config in mono + xl:
        assert config.data.filler_swap == FULL.filler_swap == 0.9
        assert config.model.options["lm_sizes"] == dict(FULL.lm_sizes)
        assert config.model.options["simulate_text"] == FULL.simulate_text
        assert (config.train.lr, config.train.batch_size) == (FULL.lr, FULL.batch_size)
    by_scheme = {c.scheme.name: c for c in mono}
    assert by_scheme["text_only"].scheme.epochs == FULL.epochs
    assert by_scheme["curriculum"].scheme.text_epochs == FULL.text_epochs == FULL.epochs  # reuses text-only
    assert {c.scheme.epochs for c in xl} == {FULL.crosslingual_epochs}
    assert sorted(c.scheme.target_speech_count for c in xl) == [0, FULL.target_speech]


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """slufit as a user installs it (a wheel, not editable), with no source tree in reach: the environment
    of a process that imports that copy."""
    root = tmp_path_factory.mktemp("installed")
    # Built from a copy of what a source distribution holds (a build/ folder left in the checkout could
    # carry stale modules into the wheel).
    source = root / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(root / "wheel"), str(source)], check=True, capture_output=True)
    wheel = next((root / "wheel").glob("slufit-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(root / "site"),
                    str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(root / "site"), "TQDM_DISABLE": "1", "COLUMNS": "120"}
    where = subprocess.run([sys.executable, "-c", "import slufit; print(slufit.__file__)"], env=env, check=True,
                           capture_output=True, text=True, cwd=root).stdout.strip()
    assert Path(where).is_relative_to(root / "site"), where
    return env


def slufit_installed(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run the installed `slufit` in `cwd`; its output (it must succeed)."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "slufit.cli", *args], env=env, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def test_installed_package_lists_and_copies_its_configs(installed, tmp_path):
    listed = slufit_installed(installed, tmp_path, "configs", "list")
    for name in ("grids/demo-mono.yaml", "tiny/mix.yaml", "tiny/pretrain.yaml", "slurm/grid_array.sbatch"):
        assert f"  {name}" in listed
    slufit_installed(installed, tmp_path, "configs", "cp", "configs/tiny/mix.yaml", "my_mix.yaml")
    slufit_installed(installed, tmp_path, "configs", "cp", "grids", "grids")
    assert (tmp_path / "my_mix.yaml").read_text() == (REPO / "src/slufit/configs/tiny/mix.yaml").read_text()
    assert (tmp_path / "grids" / "demo-mono.yaml").is_file()
    # Never over a file the user has.
    done = subprocess.run([sys.executable, "-m", "slufit.cli", "configs", "cp", "tiny/mix.yaml", "my_mix.yaml"],
                          env=installed, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "my_mix.yaml: already exists" in done.stderr
    # A packaged config is found by its name from any folder.
    plan = slufit_installed(installed, tmp_path, "train", "--config", "configs/tiny/text_only.yaml", "--dry-run")
    assert "stage 1 text_only: text=True speech=False" in plan


@pytest.mark.slow
def test_demo_quick_end_to_end(installed, tmp_path, capsys):
    """The quick demo from an installed wheel, run in a folder that is not the checkout."""
    out = tmp_path / "demo"
    printed = slufit_installed(installed, tmp_path, "demo", "--quick", "--out", str(out))
    for stage in ("1/5 corpus", "2/5 speech", "3/5 pretrain", "4a/5 grid demo-mono", "4b/5 grid demo-crosslingual",
                  "5/5 report"):
        assert stage in printed
    assert "direct mixing" in printed and "curriculum" in printed  # the table

    # Data: train utterances voiced by train speakers, test by test speakers, disjoint.
    def speakers(path):
        return {r["speaker"] for line in path.read_text().splitlines() for r in json.loads(line)["recordings"]}
    train_speakers, test_speakers = speakers(out / "data/en-US/train.jsonl"), speakers(out / "data/en-US/test.jsonl")
    assert train_speakers and test_speakers and not train_speakers & test_speakers

    # The grids: one run folder per grid point, each finished; results.csv equals the runs' summaries.
    mono, xl = out / "mono", out / "crosslingual"
    names = sorted(p.name for p in mono.iterdir() if p.is_dir())
    assert names == ["curriculum-p100-s0-en-US", "mix-p100-s0-en-US", "text_only-p00-s0-en-US"]
    assert sorted(p.name for p in xl.iterdir() if p.is_dir()) == [
        f"xl-mix-p100-t0-s0-fr-FR-en-US", f"xl-mix-p100-t{QUICK.target_speech}-s0-fr-FR-en-US"]
    with open(mono / "results.csv", newline="") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    for name in names:
        summary = json.loads((mono / name / "summary.json").read_text())
        assert summary["done"]
        assert float(rows[name]["slu_f1"]) == pytest.approx(100 * summary["metrics"]["test-speech"]["slu_f1"]["f1"],
                                                            abs=0.006)
        # The report's numbers are `slufit score`'s on the saved prediction file.
        predictions = mono / name / "eval" / "test-speech" / "predictions.jsonl"
        assert main(["score", "--gold", str(out / "data/en-US/test.jsonl"), "--pred", str(predictions),
                     "--missing-as-wrong", "--json"]) == 0
        scored = json.loads(capsys.readouterr().out)
        for metric in ("scenario", "action", "intent", "entities", "slu_f1"):
            assert scored[metric]["f1"] == pytest.approx(summary["metrics"]["test-speech"][metric]["f1"], abs=1e-9)
    for path in (out / "report.md", mono / "slu_f1_vs_fraction.png", xl / "slu_f1_by_locale.png"):
        assert path.is_file()
    assert "## Cross-lingual (fr-FR speech -> en-US)" in (out / "report.md").read_text()

    # Reproducible: a second fresh demo in another folder gives the same results.csv, but for the
    # train_seconds column (wall time). Two processes, so espeak-ng's, the bridge's and the LM's state
    # cannot carry over between them.
    other = tmp_path / "elsewhere" / "demo"
    slufit_installed(installed, tmp_path / "elsewhere", "demo", "--quick", "--out", str(other))
    for grid in ("mono", "crosslingual"):
        first, second = (_without_timing(d / grid / "results.csv") for d in (out, other))
        assert first == second and len(first) > 1, grid

    # Again: every stage is cached or skipped.
    start = time.monotonic()
    again = slufit_installed(installed, tmp_path, "demo", "--quick", "--out", str(out))
    assert "corpus done" in again and "(cached)" in again
    assert "3 done, 0 to resume, 0 new" in again
    assert time.monotonic() - start < 60

    # Interrupted after its last checkpoint but before summary.json: that run alone resumes.
    (mono / "mix-p100-s0-en-US" / "summary.json").unlink()
    resumed = slufit_installed(installed, tmp_path, "demo", "--quick", "--out", str(out))
    assert "2 done, 1 to resume, 0 new" in resumed and "mix-p100-s0-en-US: resuming" in resumed
    assert (mono / "mix-p100-s0-en-US" / "summary.json").is_file()


def _without_timing(path: Path) -> list[dict[str, str]]:
    """results.csv's rows without train_seconds (wall time: the one column that differs between fresh runs)."""
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k != "train_seconds"} for row in csv.DictReader(handle)]


def test_bridge_speakers_reach_the_bridge_config(tmp_path):
    from slufit.demo import BRIDGE_SPEAKERS, FULL, bridge_config
    from slufit.models.bridge.pretrain import BRIDGE_POOLS

    assert set(BRIDGE_SPEAKERS) <= set(BRIDGE_POOLS)
    assert bridge_config(tmp_path, FULL, 2, tmp_path / "cache").speakers == "unlabelled"
    config = bridge_config(tmp_path, FULL, 2, tmp_path / "cache", "unlabelled+festival")
    assert config.speakers == "unlabelled+festival" and config.epochs == FULL.bridge_epochs
