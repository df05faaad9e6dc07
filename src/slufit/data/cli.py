"""`slufit data`: import datasets to canonical JSONL, show statistics, draw speech budgets.

    slufit data import FORMAT SRC --out OUT.jsonl|OUT_DIR [--audio-root DIR] [--require-audio] ...
    slufit data stats FILE [--json]
    slufit data budget ...            (implemented in slufit.data.budget)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from slufit.data import stats
from slufit.data.example import Example, write_examples
from slufit.data.importers import IMPORTERS
from slufit.errors import DataError, SlufitError

MISSING_SHOWN = 3  # how many missing audio files to name in the report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    importer = sub.add_parser("import", help="convert a dataset to canonical JSONL",
                              description="Convert a dataset to canonical JSONL (validated, written atomically).")
    formats = importer.add_subparsers(dest="format", metavar="FORMAT", required=True)
    for name, (module_name, help_text) in IMPORTERS.items():
        p = formats.add_parser(name, help=help_text, description=help_text)
        p.add_argument("src", type=Path, metavar="SRC", help="source file or folder")
        p.add_argument("--out", type=Path, required=True,
                       help="OUT.jsonl, or a folder that receives one <partition>.jsonl per partition")
        p.add_argument("--audio-root", type=Path, action="append",
                       help="folder holding the audio files the source names (repeat to search several)")
        p.add_argument("--require-audio", action="store_true",
                       help="fail, writing nothing, when any referenced audio file is missing or unreadable")
        p.add_argument("--sample", type=int, default=None, metavar="N",
                       help="keep N examples of each partition, drawn at random (in file order; e.g. 600 SLURP test)")
        p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
        importlib.import_module(module_name).add_arguments(p)
        p.set_defaults(_data_run=_run_import, _importer=module_name)

    s = sub.add_parser("stats", help="counts per locale, scenario, intent and entity type; audio minutes",
                       description="Counts per locale, scenario, intent and entity type; audio coverage and minutes.")
    stats.add_arguments(s)
    s.set_defaults(_data_run=stats.run)

    # The budget command lives in slufit.data.budget and is imported only when chosen, so a
    # problem there cannot break `data import`; its arguments are parsed by its own parser.
    b = sub.add_parser("budget", help="draw a nested speech budget (subset of ids) from a dataset",
                       add_help=False, prefix_chars="\0")
    b.add_argument("budget_args", nargs=argparse.REMAINDER)
    b.set_defaults(_data_run=_run_budget)


def run(args: argparse.Namespace) -> int:
    return args._data_run(args)


def _run_budget(args: argparse.Namespace) -> int:
    try:
        budget = importlib.import_module("slufit.data.budget")
    except ModuleNotFoundError as err:
        if err.name != "slufit.data.budget":
            raise
        raise SlufitError("`slufit data budget` is not available in this version (no slufit.data.budget)") from None
    parser = argparse.ArgumentParser(prog="slufit data budget",
                                     description="Draw a nested speech budget (subset of ids) from a dataset.")
    budget.add_arguments(parser)
    inner = parser.parse_args(args.budget_args)
    inner.command = args.command
    return int(budget.run(inner) or 0)


def _run_import(args: argparse.Namespace) -> int:
    out = args.out
    to_folder = out.suffix != ".jsonl"
    out_dir = out if to_folder else out.parent
    imported = importlib.import_module(args._importer).convert(args.src, args, out_dir)

    if imported.missing_audio:
        shown = ", ".join(imported.missing_audio[:MISSING_SHOWN])
        more = " ..." if len(imported.missing_audio) > MISSING_SHOWN else ""
        message = (f"{len(imported.missing_audio)} of {imported.recordings} audio file(s) missing or unusable "
                   f"(first: {shown}{more})")
        if args.require_audio:
            raise DataError(f"{args.src}: {message}; nothing written (--require-audio)")
        print(f"warning: {message}; their recordings are listed anyway (see --audio-root)", file=sys.stderr)
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)

    partitions = imported.partitions
    if args.sample is not None:
        partitions = {name: sample(examples, args.sample, args.seed) for name, examples in partitions.items()}
    targets = _targets(partitions, out, to_folder, args.src)
    for path, examples in targets.items():  # every file validated before the first is written
        _check_unique(examples, args.src, path)
    for path, examples in targets.items():
        n = write_examples(path, examples)
        with_audio = sum(1 for e in examples if e.recordings)
        print(f"{path}: {n} examples ({with_audio} with audio)")
    return 0


def sample(examples: list[Example], n: int, seed: int) -> list[Example]:
    """`n` examples drawn without replacement by random.Random(seed), kept in their file order."""
    import random

    if n < 1:
        raise SlufitError(f"--sample must be >= 1, got {n}")
    if n >= len(examples):
        return examples
    chosen = set(random.Random(seed).sample(range(len(examples)), n))
    return [e for i, e in enumerate(examples) if i in chosen]


def _targets(partitions: dict[str, list[Example]], out: Path, to_folder: bool, src: Path) -> dict[Path, list[Example]]:
    """Which examples go to which output file."""
    partitions = {name: examples for name, examples in partitions.items() if examples}
    if not partitions:
        raise DataError(f"{src}: no examples found")
    if to_folder:
        return {out / f"{name or src.stem}.jsonl": examples for name, examples in partitions.items()}
    if len(partitions) > 1:
        names = ", ".join(sorted(partitions))
        raise DataError(f"{src}: holds partitions {names}; pass --partition NAME, or a folder as --out "
                        "to write one file per partition")
    return {out: next(iter(partitions.values()))}


def _check_unique(examples: list[Example], src: Path, path: Path) -> None:
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DataError(f"{src}: duplicate id {example.id!r} (would be written twice to {path})")
        seen.add(example.id)
