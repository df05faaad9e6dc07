"""`slufit score`: score SLURP prediction files as the official toolkit does, with CIs and tests.

    slufit score --gold test.jsonl --pred predictions.jsonl [--load-gold] [--missing-as-wrong] [--ci] [--json]
    slufit score --gold test.jsonl --compare A.jsonl B.jsonl      # paired bootstrap: is A better than B?
    slufit score --gold test.jsonl --pred predictions.jsonl --massive   # adds MASSIVE-style metrics per locale
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from slufit.errors import SlufitError
from slufit.scoring.bootstrap import paired_test
from slufit.scoring.gold import GoldSet, read_gold, read_predictions
from slufit.scoring.massive import massive_metrics
from slufit.scoring.score import Scored, report, score_gold
from slufit.scoring.slurp import METRICS

LABELS = {"scenario": "Scenario", "action": "Action", "intent": "Intent (scenario_action)",
          "entities": "Entities (span F1)", "entities_word": "Entities (word distance)",
          "entities_char": "Entities (char distance)", "slu_f1": "SLU-F1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gold", required=True, help="gold data: raw SLURP jsonl or canonical slufit JSONL")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pred", help="SLURP prediction lines keyed by 'file' (or 'slurp_id' with --load-gold)")
    what.add_argument("--compare", nargs=2, metavar=("PRED_A", "PRED_B"),
                      help="paired bootstrap of two prediction files: is A better than B?")
    parser.add_argument("--load-gold", action="store_true",
                        help="text mode: predictions keyed by slurp_id (or example id), one item per utterance")
    parser.add_argument("--missing-as-wrong", action="store_true",
                        help="score gold items with no prediction as wrong (the official tool skips them)")
    parser.add_argument("--ci", action="store_true",
                        help="95%% bootstrap intervals of intent accuracy and SLU-F1 (1,000 resamples of utterances)")
    parser.add_argument("--massive", action="store_true",
                        help="also report MASSIVE-style exact match, intent accuracy and slot F1 per locale")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _score(gold: GoldSet, path: str, args: argparse.Namespace) -> tuple[Scored, dict]:
    predictions = read_predictions(path, text=args.load_gold)
    scored = score_gold(gold, predictions, missing_as_wrong=args.missing_as_wrong)
    key = "slurp_id" if args.load_gold else "file"
    if scored.n == 0:
        hint = "" if args.load_gold else "; for slurp_id predictions use --load-gold"
        raise SlufitError(f"{path}: no prediction matches a gold item of {args.gold} (keyed by {key}{hint})")
    if scored.missing:
        action = "scored as wrong" if args.missing_as_wrong else "skipped, as the official tool does"
        print(f"warning: {path}: {len(scored.missing)} of {len(gold.items)} gold items have no prediction "
              f"({action}); first: {scored.missing[0]}", file=sys.stderr)
    if scored.unmatched:
        print(f"warning: {path}: {scored.unmatched} predictions match no gold item and were ignored", file=sys.stderr)
    return scored, predictions


def run(args: argparse.Namespace) -> int:
    gold = read_gold(args.gold, text=args.load_gold)
    if args.compare:
        (a, _), (b, _) = (_score(gold, path, args) for path in args.compare)
        result: dict[str, Any] = paired_test(a.counts, b.counts)
        result.update(a=args.compare[0], b=args.compare[1], n={"a": a.n, "b": b.n},
                      missing={"a": len(a.missing), "b": len(b.missing)})
        print(json.dumps(result, indent=2) if args.json else _compare_table(result))
        return 0
    scored, predictions = _score(gold, args.pred, args)
    result = report(scored, ci=args.ci)
    if args.massive:
        result["massive"] = massive_metrics(gold, predictions, missing_as_wrong=args.missing_as_wrong)
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


def _render(*renderables: Any) -> str:
    from rich.console import Console  # only the table output needs rich

    console = Console(file=io.StringIO(), width=100)
    for renderable in renderables:
        console.print(renderable)
    return console.file.getvalue().rstrip()


def _table(result: dict[str, Any]) -> str:
    from rich.table import Table

    table = Table(title=f"SLURP metrics (n={result['n']} items, missing={result['missing']})")
    for column in ("metric", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in METRICS:
        m = result[name]
        table.add_row(LABELS[name], *(f"{100 * m[k]:.2f}" for k in ("precision", "recall", "f1")))
    parts: list[Any] = [table]
    v = result.get("verbatim_fillers")
    if v and v["predicted"]:
        parts.append(f"Predicted fillers found verbatim in the transcript: {v['verbatim']} of {v['predicted']} "
                     f"({100 * v['share']:.2f} %)")
    if "ci" in result:
        ci = result["ci"]
        parts.append(f"95% CI ({ci['resamples']} bootstrap resamples of utterances): "
                     f"intent accuracy {100 * ci['intent_accuracy']['low']:.2f}-{100 * ci['intent_accuracy']['high']:.2f}, "
                     f"SLU-F1 {100 * ci['slu_f1']['low']:.2f}-{100 * ci['slu_f1']['high']:.2f}")
    if "massive" in result:
        massive = Table(title="MASSIVE-style metrics")
        for column in ("locale", "n", "exact match", "intent acc", "slot F1"):
            massive.add_column(column, justify="left" if column == "locale" else "right")
        rows = {**result["massive"]["locales"], "overall": result["massive"]["overall"]}
        for locale, m in rows.items():
            massive.add_row(locale, str(m["n"]), f"{100 * m['exact_match']:.2f}",
                            f"{100 * m['intent_accuracy']:.2f}", f"{100 * m['slot_f1']['f1']:.2f}")
        parts.append(massive)
    return _render(*parts)


def _compare_table(result: dict[str, Any]) -> str:
    from rich.table import Table

    table = Table(title=f"Paired bootstrap ({result['resamples']} resamples): A = {Path(result['a']).name}, B = {Path(result['b']).name}")
    for column in ("metric", "A", "B", "A - B", "95% CI of A - B", "p (A not better)"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, label in (("intent_accuracy", "Intent accuracy"), ("slu_f1", "SLU-F1")):
        m = result[name]
        table.add_row(label, f"{100 * m['a']:.2f}", f"{100 * m['b']:.2f}", f"{100 * m['delta']:+.2f}",
                      f"{100 * m['low']:+.2f} to {100 * m['high']:+.2f}", _p_value(m["p_value"], result["resamples"]))
    return _render(table)


def _p_value(p: float, resamples: int) -> str:
    # A bootstrap p-value resolves only 1/resamples: zero means "below that".
    return f"<{1 / resamples:.3f}" if p == 0 else f"{p:.3f}"
