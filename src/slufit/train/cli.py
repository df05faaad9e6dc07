"""`slufit train --config FILE [key=value ...] [--dry-run] [--resume RUN_DIR]`.

    slufit train --config configs/tiny/curriculum.yaml                 # train; writes runs/curriculum/
    slufit train --config configs/tiny/mix.yaml data.speech_fraction=0.1 run_dir=runs/mix10
    slufit train --config configs/qwen2_audio/slurp_curriculum.yaml --dry-run   # schedule + memory per GPU
    slufit train --config ... --dry-run --accelerate-config configs/accelerate/8gpu_fsdp.yaml --gpu-memory 40
    slufit train --resume runs/curriculum                              # continue an interrupted run
    accelerate launch --config_file configs/accelerate/8gpu_ddp.yaml -m slufit.cli train --config ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slufit.errors import SlufitError
from slufit.resources import resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="run config YAML (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override config fields, dotted, values as YAML (train.lr=1e-5 data.train=[a.jsonl])")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config, the schedule (stages, items, steps, LR) and the memory "
                             "per GPU under each launcher config, and exit; loads no weights")
    parser.add_argument("--accelerate-config", type=Path, action="append", metavar="FILE",
                        help="with --dry-run: the launcher config(s) to estimate memory for (default: one process and "
                             "every file of configs/accelerate/)")
    parser.add_argument("--gpu-memory", type=float, metavar="GB",
                        help="with --dry-run: the card's memory in GB for the verdicts (default: the detected GPU, "
                             "else 80)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last checkpoint (uses RUN_DIR/config.yaml)")


def run(args: argparse.Namespace) -> int:
    from slufit.train.config import load_config, resolve_paths

    if args.resume is not None:
        if args.config is not None or args.overrides:
            raise SlufitError("--resume takes its config from RUN_DIR/config.yaml; drop --config and overrides")
        saved = args.resume / "config.yaml"
        if not saved.is_file():
            raise SlufitError(f"{saved}: no such file; is {args.resume} a `slufit train` run folder?")
        config = load_config(saved)
        config.run_dir = str(args.resume.resolve())
        if (args.resume / "summary.json").is_file():
            print(f"{args.resume}: already finished (summary.json); nothing to do")
            return 0
    elif args.config is None:
        raise SlufitError("give --config FILE (or --resume RUN_DIR)")
    else:
        config = resolve_paths(load_config(resolve_config(args.config), args.overrides))

    if args.dry_run:
        return _dry_run(config, args.accelerate_config, args.gpu_memory)
    from slufit.train.loop import train

    summary = train(config, resume=args.resume is not None)
    print(f"done: {config.run_dir}/summary.json ({summary['train_seconds']:.0f} s)")
    return 0


def _dry_run(config, accelerate_configs: list[Path] | None = None, gpu_memory: float | None = None) -> int:
    from slufit.train.config import dump_config
    from slufit.train.loop import format_schedule, plan_schedule
    from slufit.train.memory import default_launchers, detected_gpu_gb, report

    print(dump_config(config), end="")
    print(f"# model: {_model_source(config.model.name)}")
    files = [resolve_config(f) for f in accelerate_configs] if accelerate_configs else None  # packaged names too
    print(report(config, default_launchers(files), gpu_memory or detected_gpu_gb() or 80.0))
    missing = [p for p in config.data.train + config.data.dev + config.data.test if not Path(p).is_file()]
    if missing:
        # Still useful on a machine without the data: show the stage structure the scheme makes.
        from slufit.train.schemes import stage_configs

        print(f"# data not found here ({missing[0]}{' ...' if len(missing) > 1 else ''}); stages without item counts:")
        for i, s in enumerate(stage_configs(config), 1):
            lr = s.lr or config.train.lr
            warmup = config.train.warmup_ratio if s.warmup_ratio is None else s.warmup_ratio
            print(f"  stage {i} {s.name}: text={s.text} speech={s.speech} (share {s.speech_share:g}) x {s.epochs:g} "
                  f"epoch(s), peak lr {lr:g}, warm-up {warmup:g}")
        return 0
    _, plans, budget, grad_accum = plan_schedule(config)
    print(format_schedule(config, plans, budget, grad_accum))
    return 0


def _model_source(name: str) -> str:
    """Where `model.name` would load from, without loading it: a registered name's hub id, or a folder."""
    from slufit.models.registry import MODELS

    if name in MODELS:
        return f"{name} -> {MODELS[name]} (registered; slufit models lists them)"
    if Path(name).is_dir():
        return f"{name} (a local folder)"
    return f"{name} (not a registered name or a folder here: read as a hub id)"
