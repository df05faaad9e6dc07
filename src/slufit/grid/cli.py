"""`slufit grid`: run a grid of training runs, or rebuild its report from run folders.

    slufit grid --config configs/grids/demo-mono.yaml      # run (or resume) every run, then report
    slufit grid report runs/demo/mono                      # gather run folders into report.md
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["run", "report"], default="run",
                        help="run (default): train every unfinished run of --config, then report; "
                             "report: rebuild the report of DIR from its run folders only")
    parser.add_argument("dir", nargs="?", type=Path, help="grid folder (for `report`)")
    parser.add_argument("--config", type=Path, help="grid YAML file (see configs/grids/)")
    parser.add_argument("--out", type=Path, help="grid folder; overrides the config's `out`")
    parser.add_argument("--eval", dest="eval_name", help="eval set the report's tables use (default: the config's "
                        "report.eval, else the first eval set with 'speech' in its name)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")


def run(args: argparse.Namespace) -> int:
    from slufit.errors import SlufitError

    if args.action == "report":
        from slufit.grid.report import build_report

        grid_dir = args.dir or args.out
        if grid_dir is None:
            raise SlufitError("usage: slufit grid report DIR")
        report = build_report(grid_dir, eval_name=args.eval_name)
        print(f"wrote {report}, {report.parent / 'results.csv'} and plots")
        return 0
    if args.config is None:
        raise SlufitError("give --config GRID.yaml (or `slufit grid report DIR`)")
    if args.dir is not None:
        raise SlufitError(f"unexpected argument {args.dir}; the grid folder comes from --out or the config's `out`")
    from slufit.grid.runner import run_grid
    from slufit.grid.spec import load_grid

    grid = load_grid(args.config, out=args.out)
    run_grid(grid, eval_name=args.eval_name, dry_run=args.dry_run)
    return 0
