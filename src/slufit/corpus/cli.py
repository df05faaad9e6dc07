"""`slufit corpus build`: write the embedded multilingual SLU corpus; `slufit corpus stats`: its label space."""

from __future__ import annotations

import argparse
import sys

from slufit.corpus.generator import DEFAULT_SIZES, LOCALES, build_corpus, corpus_stats
from slufit.errors import SlufitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="write DIR/<locale>/{train,dev,test,pretrain}.jsonl")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--locales", default=",".join(LOCALES), help=f"comma-separated (default {','.join(LOCALES)})")
    for split, n in DEFAULT_SIZES.items():
        build.add_argument(f"--{split}", type=int, default=n, help=f"utterances per locale (default {n})")
    build.add_argument("--seed", type=int, default=0, help="same seed, byte-identical files (default 0)")
    stats = sub.add_parser("stats", help="scenarios, intents, entity types, templates and fillers per locale")
    stats.add_argument("--locales", default=",".join(LOCALES))


def _locales(text: str) -> list[str]:
    locales = [part.strip() for part in text.split(",") if part.strip()]
    if not locales:
        raise SlufitError("--locales is empty")
    return locales


def run(args: argparse.Namespace) -> int:
    locales = _locales(args.locales)
    if args.corpus_command == "stats":
        print(f"{'locale':8} scenarios intents entity_types templates fillers")
        for locale in locales:
            s = corpus_stats(locale)
            print(f"{locale:8} {s['scenarios']:9} {s['intents']:7} {s['entity_types']:12} "
                  f"{s['templates']:9} {s['fillers']:7}")
        return 0
    counts = build_corpus(args.out, locales, n_train=args.train, n_dev=args.dev, n_test=args.test,
                          n_pretrain=args.pretrain, seed=args.seed)
    for locale, splits in counts.items():
        sizes = ", ".join(f"{split} {n}" for split, n in splits.items())
        print(f"{args.out}/{locale}: {sizes}", file=sys.stdout)
    return 0
