"""The `slufit` command.

Each subcommand lives in its own module, which exposes `add_arguments(parser)`
and `run(args) -> int`. Only the chosen subcommand's module is imported, so
`slufit --help` and light commands do not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from slufit import __version__
from slufit.errors import SlufitError

# name -> (module, one-line help). A literal dict: the whole command surface at a glance.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("slufit.data.cli", "import datasets to canonical JSONL, show statistics, draw speech budgets"),
    "corpus": ("slufit.corpus.cli", "build the embedded multilingual SLU corpus"),
    "speech": ("slufit.speech.cli", "synthesize speech for a canonical dataset (espeak-ng)"),
    "score": ("slufit.scoring.cli", "score predictions exactly as the official SLURP toolkit does"),
    "pretrain": ("slufit.models.bridge.pretrain", "train the tiny default's CTC bridge on unlabelled speech"),
    "models": ("slufit.models.cli", "list the registered models: hub ids, sizes, audio windows, options"),
    "train": ("slufit.train.cli", "fine-tune a model with a scheme (text-only, mix, curriculum, cross-lingual)"),
    "eval": ("slufit.train.evaluate", "evaluate a trained run on a dataset, with speech or text input"),
    "grid": ("slufit.grid.cli", "run a grid of schemes x speech fractions x seeds, and report it"),
    "configs": ("slufit.resources", "list the packaged configs, or copy one out for editing"),
    "demo": ("slufit.demo", "run the whole study on the embedded default (offline, CPU)"),
}


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slufit",
        description="Fine-tune audio language models for spoken language understanding under limited speech data.",
    )
    parser.add_argument("--version", action="version", version=f"slufit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except SlufitError as err:
        print(f"slufit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"slufit {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
