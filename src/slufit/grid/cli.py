"""`slufit grid`: run a grid of training runs, plan it for a cluster, or rebuild its report from run folders.

    slufit grid --config configs/grids/demo-mono.yaml      # run (or resume) every run, then report
    slufit grid plan --config configs/grids/slurp.yaml     # every run: state, and the command that trains it
    slufit grid --config G.yaml --shard 2/4                # one of 4 workers (any machines, one grid folder)
    slufit grid --config G.yaml --index $SLURM_ARRAY_TASK_ID --accelerate-config configs/accelerate/8gpu_fsdp.yaml
    slufit grid report runs/demo/mono                      # gather run folders into report.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slufit.resources import resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["run", "plan", "report"], default="run",
                        help="run (default): train every unfinished run of --config that no other worker holds, "
                             "then report; plan: list every run with its state and the command that trains it "
                             "alone; report: rebuild the report of DIR from its run folders only")
    parser.add_argument("dir", nargs="?", type=Path, help="grid folder (for `report`)")
    parser.add_argument("--config", type=Path, help="grid YAML file (see configs/grids/)")
    parser.add_argument("--out", type=Path, help="grid folder; overrides the config's `out`")
    parser.add_argument("--eval", dest="eval_name", help="eval set the report's tables use (default: the config's "
                        "report.eval, else the first eval set with 'speech' in its name)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")
    share = parser.add_mutually_exclusive_group()
    share.add_argument("--shard", metavar="I/N", help="train only shard I of N (runs I-1, I-1+N, ... of the grid)")
    share.add_argument("--index", type=int, metavar="K",
                       help="train only run K (0-based, as `grid plan` numbers them; $SLURM_ARRAY_TASK_ID)")
    parser.add_argument("--launcher", choices=["accelerate"],
                        help="train each run with `accelerate launch` (multi-GPU) in a child process; "
                             "plan: print that command")
    parser.add_argument("--accelerate-config", type=Path, metavar="FILE",
                        help="accelerate config of --launcher accelerate (implies it; default "
                             "configs/accelerate/8gpu_fsdp.yaml)")
    parser.add_argument("--lock-timeout", type=float, metavar="SECONDS",
                        help="a run whose lock's heartbeat is older than this is taken over (default 600)")


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
    from slufit.grid.lock import LOCK_TIMEOUT
    from slufit.grid.plan import DEFAULT_ACCELERATE_CONFIG, parse_shard, plan
    from slufit.grid.spec import load_grid

    accelerate_config = (resolve_config(args.accelerate_config) if args.accelerate_config else
                         DEFAULT_ACCELERATE_CONFIG if args.launcher else None)
    timeout = LOCK_TIMEOUT if args.lock_timeout is None else args.lock_timeout
    if timeout < 0:
        raise SlufitError("--lock-timeout must be >= 0 seconds")
    shard = parse_shard(args.shard) if args.shard else None
    args.config = resolve_config(args.config)
    grid = load_grid(args.config, out=args.out)
    if args.action == "plan":
        if shard or args.index is not None or args.dry_run:
            raise SlufitError("`grid plan` lists every run; --shard, --index and --dry-run belong to `slufit grid`")
        print("\n".join(plan(grid, accelerate_config, timeout, grid_config=args.config, out_given=args.out is not None)))
        return 0
    from slufit.grid.runner import run_grid

    run_grid(grid, eval_name=args.eval_name, dry_run=args.dry_run, shard=shard, index=args.index, accelerate_config=accelerate_config, lock_timeout=timeout)
    return 0
