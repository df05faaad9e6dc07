"""`slufit grid plan`: every run of a grid, its state, and the one command that trains it alone.

Each run's resolved train config is written into its run folder as `config.yaml` (the file
`slufit train` itself writes there), so the command is short and the config is the record:

    slufit train --config runs/slurp/mix-p02-s0-en-US/config.yaml      # a run not started
    slufit train --resume runs/slurp/mix-p02-s0-en-US                  # a run with a checkpoint
    accelerate launch --config_file configs/accelerate/8gpu_fsdp.yaml -m slufit.cli train --config ...

The index of each run is its position in the grid (`GridSpec.runs()`), the `--index K` of
`slufit grid` and the `$SLURM_ARRAY_TASK_ID` of configs/slurm/grid_array.sbatch.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from slufit.errors import SlufitError
from slufit.files import atomic_open, write_json
from slufit.grid.lock import LOCK_TIMEOUT, describe_state, run_state
from slufit.grid.spec import GRID_FILE, RUN_FILE, GridSpec, RunSpec
from slufit.resources import configs_root

CONFIGS = configs_root()  # the packaged configs (slufit.resources)
# `--launcher accelerate` without `--accelerate-config`: one node, 8 GPUs, FSDP2 (the study's full fine-tuning).
DEFAULT_ACCELERATE_CONFIG = CONFIGS / "accelerate" / "8gpu_fsdp.yaml"
SBATCH = CONFIGS / "slurm" / "grid_array.sbatch"


def shown(path: Path) -> str:
    """A path as a command line shows it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd())) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)


def select_runs(runs: list[RunSpec], shard: tuple[int, int] | None = None,
                index: int | None = None) -> list[tuple[int, RunSpec]]:
    """(index, run) of the runs a worker is given: all, run `index` alone, or shard I of N (runs I-1,
    I-1+N, ...: fixed by the grid alone, so shards started at different times never overlap)."""
    indexed = list(enumerate(runs))
    if index is not None:
        if not 0 <= index < len(runs):
            raise SlufitError(f"--index {index}: the grid has runs 0 to {len(runs) - 1}")
        return [indexed[index]]
    if shard is not None:
        i, n = shard
        return [(k, run) for k, run in indexed if k % n == i - 1]
    return indexed


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4); shards are numbered from 1."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise SlufitError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise SlufitError(f"--shard {text}: I must be between 1 and N")
    return i, n


def write_run_files(grid: GridSpec, run: RunSpec, run_dir: Path, config_file: bool) -> object:
    """grid_run.json (coordinates, test files) and, when `config_file`, the resolved config.yaml; returns the config."""
    from slufit.train.config import dump_config

    config = build_run_config(grid, run, run_dir)
    # Coordinates first, so a folder is placeable even if training dies; test files for the paired bootstrap.
    write_json(run_dir / RUN_FILE, {**run.to_dict(), "test_files": list(config.data.test)})
    if config_file:
        with atomic_open(run_dir / "config.yaml") as handle:
            handle.write(dump_config(config))
    return config


def train_command(run_dir: Path, resume: bool, accelerate_config: Path | None = None,
                  slufit: list[str] = ("slufit",)) -> list[str]:
    """The command that trains (or resumes) the run in `run_dir` alone."""
    args = ["train", "--resume", str(run_dir)] if resume else ["train", "--config", str(run_dir / "config.yaml")]
    if accelerate_config is None:
        return [*slufit, *args]
    return ["accelerate", "launch", "--config_file", shown(accelerate_config), "-m", "slufit.cli", *args]


def check_accelerate_config(path: Path | None) -> None:
    if path is not None and not path.is_file():
        raise SlufitError(f"--accelerate-config {path}: no such file (see configs/accelerate/)")


def plan(grid: GridSpec, accelerate_config: Path | None = None, timeout: float = LOCK_TIMEOUT,
         grid_config: Path | None = None, out_given: bool = False) -> list[str]:
    """The plan's lines; writes each unstarted run's config.yaml and grid_run.json (and grid.yaml)."""
    check_accelerate_config(accelerate_config)
    runs = grid.runs()
    if not runs:
        raise SlufitError(f"grid {grid.name}: no runs (speech schemes need a fraction above 0)")
    grid.out.mkdir(parents=True, exist_ok=True)
    write_grid_file(grid)
    rows, counts = [], {"done": 0, "partial": 0, "todo": 0, "locked": 0}
    for k, run in enumerate(runs):
        run_dir = grid.out / run.name
        state = run_state(run_dir)
        # A started run keeps the config it started with; --resume reads it.
        write_run_files(grid, run, run_dir, config_file=state == "new")
        described = describe_state(run_dir, timeout)
        counts[{"new": "todo"}.get(state, state)] += 1
        counts["locked"] += "locked by" in described
        # A finished run's command is harmless: `slufit train --resume` says there is nothing to do.
        command = shlex.join(train_command(run_dir, state != "new", accelerate_config))
        rows.append((str(k), run.name, described, command))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"grid {grid.name}: {len(runs)} runs in {grid.out} ({counts['done']} done, {counts['partial']} partial, "
             f"{counts['todo']} todo; {counts['locked']} locked); commands run from {os.getcwd()}"]
    lines += [f"  {k:>{width[0]}}  {name:<{width[1]}}  {state:<{width[2]}}  {command}" for k, name, state, command in rows]
    source = shlex.quote(shown(grid_config or grid.out / "grid.yaml"))
    options = f" --out {shlex.quote(shown(grid.out))}" if out_given else ""
    if accelerate_config is not None and Path(accelerate_config).resolve() != DEFAULT_ACCELERATE_CONFIG:
        options += f" --accelerate-config {shlex.quote(shown(accelerate_config))}"
    lines += ["", "Every run as a Slurm array task (docs/grid.md, \"On a cluster\"):",
              f"  sbatch --array=0-{len(runs) - 1} {shown(SBATCH)} {source}{options}",
              f"Or any number of workers sharing the grid: slufit grid --config {source}{options}"]
    return lines


def write_grid_file(grid: GridSpec) -> None:
    """The grid config as run (absolute paths), in the grid folder, for the report and for reruns."""
    data = grid.to_dict()
    data["out"] = str(grid.out.resolve())
    data["data"] = {k: str(grid.data_file(k, "{locale}").resolve()) for k in grid.data}
    if grid.train_config is not None:
        data["train"]["config"] = str(grid.train_config.resolve())
    with atomic_open(grid.out / GRID_FILE) as handle:
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)


# ---- a grid point -> its run's config


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
