"""Run a grid: one training run per grid point, each into its own run folder, then the report.

Resumable by construction: a run whose `summary.json` says done is skipped, a run
with a checkpoint resumes from it, and the rest start fresh. Runs are trained
in this process through slufit.train's Python entry point, one after another.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from slufit.errors import SlufitError
from slufit.files import atomic_open, read_json, write_json
from slufit.grid.report import GRID_FILE, build_report
from slufit.grid.spec import RUN_FILE, GridSpec, RunSpec

# train_fn(config, resume) trains one run into config.run_dir (slufit.train's entry point by default).
TrainFn = Callable[[Any, bool], Any]


def run_state(run_dir: Path) -> str:
    """`done` (summary.json with done), `partial` (a checkpoint folder: resume from it) or `new`."""
    summary = run_dir / "summary.json"
    if summary.is_file() and read_json(summary).get("done"):
        return "done"
    # Any checkpoints/ folder, even one killed while its first checkpoint was written: slufit.train refuses
    # to start afresh over it, and resuming without a complete checkpoint starts from the beginning.
    if (run_dir / "checkpoints").is_dir():
        return "partial"
    return "new"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}; dotted keys pass through."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name not in ("model.options",):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def run_overrides(grid: GridSpec, run: RunSpec, run_dir: Path) -> dict[str, Any]:
    """The train config keys (slufit.train.config) that make `run` out of the grid's shared config."""
    def files(key: str, locales: list[str]) -> list[str]:
        paths = [grid.data_file(key, loc) for loc in locales]
        return [str(p.resolve()) for p in paths if p is not None]

    train_locales = [run.source_locale, run.locale] if run.crosslingual else [run.locale]
    # Cross-lingual runs are evaluated on the target first (the table's eval set), then the source.
    test_locales = [run.locale, run.source_locale] if run.crosslingual else [run.locale]
    out: dict[str, Any] = {
        "run_dir": str(run_dir.resolve()),
        "train.seed": run.seed,
        "data.budget_seed": run.seed,
        "data.train": files("train", train_locales),
        "data.test": files("test", test_locales),
    }
    if not out["data.train"] or not out["data.test"]:
        raise SlufitError(f"{grid.source_file}: the grid needs data.train and data.test file templates")
    if "dev" in grid.data:
        out["data.dev"] = files("dev", test_locales)
    if "rehearsal" in grid.data:
        out["data.rehearsal"] = str(grid.data_file("rehearsal", train_locales[0]).resolve())
    if run.scheme == "text_only":
        out["scheme.name"] = "text_only"
    elif run.crosslingual:
        out.update({"scheme.name": "crosslingual", "scheme.order": run.scheme,
                    "scheme.source_locale": run.source_locale, "scheme.target_locales": [run.locale],
                    "scheme.target_speech_count": run.target_speech, "data.speech_fraction": run.fraction / 100})
    else:
        out.update({"scheme.name": run.scheme, "data.speech_fraction": run.fraction / 100})
    return out


def build_run_config(grid: GridSpec, run: RunSpec, run_dir: Path):
    """The resolved slufit.train Config of one run: base file, grid overrides, then the run's own keys."""
    from slufit.train.config import apply_override, config_from_dict, resolve_paths

    data: dict[str, Any] = {}
    if grid.train_config is not None:
        if not grid.train_config.is_file():
            raise SlufitError(f"{grid.source_file}: train.config {grid.train_config}: no such file")
        data = yaml.safe_load(grid.train_config.read_text(encoding="utf-8")) or {}
    for key, value in {**_flatten(grid.train_overrides), **run_overrides(grid, run, run_dir)}.items():
        apply_override(data, f"{key}={json.dumps(value)}")
    return resolve_paths(config_from_dict(data, f"{grid.source_file or grid.name} ({run.name})"))


def default_train_fn() -> TrainFn:
    """slufit.train's Python entry point: train one run into its run folder."""
    from slufit.train.loop import train

    return lambda config, resume: train(config, resume=resume)


def write_grid_file(grid: GridSpec) -> None:
    """The grid config as run (absolute paths), in the grid folder, for the report and for reruns."""
    data = grid.to_dict()
    data["out"] = str(grid.out.resolve())
    data["data"] = {k: str(grid.data_file(k, "{locale}").resolve()) for k in grid.data}
    if grid.train_config is not None:
        data["train"]["config"] = str(grid.train_config.resolve())
    with atomic_open(grid.out / GRID_FILE) as handle:
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)


def run_grid(grid: GridSpec, eval_name: str | None = None, dry_run: bool = False, train_fn: TrainFn | None = None,
             log: Callable[[str], None] = print) -> Path | None:
    """Train every unfinished run of `grid` (skipping finished ones), then build the report.

    Returns the report's path (None on a dry run or when no run has finished).
    """
    runs = grid.runs()
    grid.out.mkdir(parents=True, exist_ok=True)
    states = {run.name: run_state(grid.out / run.name) for run in runs}
    counts = {s: sum(v == s for v in states.values()) for s in ("done", "partial", "new")}
    log(f"grid {grid.name}: {len(runs)} runs in {grid.out} ({counts['done']} done, {counts['partial']} to resume, "
        f"{counts['new']} new)")
    if dry_run:
        for run in runs:
            log(f"  {run.name}: {states[run.name]}")
        return None
    write_grid_file(grid)
    train_fn = train_fn or default_train_fn()
    for index, run in enumerate(runs, start=1):
        run_dir = grid.out / run.name
        state = states[run.name]
        if state == "done":
            log(f"[{index}/{len(runs)}] {run.name}: done, skipped")
            continue
        config = build_run_config(grid, run, run_dir)
        # Coordinates first, so a folder is placeable even if training dies; test files for the paired bootstrap.
        write_json(run_dir / RUN_FILE, {**run.to_dict(), "test_files": list(config.data.test)})
        log(f"[{index}/{len(runs)}] {run.name}: {'resuming' if state == 'partial' else 'training'}")
        start = time.monotonic()
        train_fn(config, state == "partial")
        if run_state(run_dir) != "done":
            raise SlufitError(f"{run_dir}: training returned without writing summary.json (done)")
        log(f"[{index}/{len(runs)}] {run.name}: finished in {time.monotonic() - start:.0f} s")
    report = build_report(grid.out, eval_name=eval_name or grid.report_eval, reference_scheme=grid.reference_scheme)
    log(f"report: {report}")
    return report
