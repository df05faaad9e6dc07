"""The copy constraint measured after the fact: a text run's predictions with every filler snapped to the
transcript (slufit.models.composed.target.snap_fillers, what `copy_fillers: true` does while generating), scored
beside the original predictions (intent, SLU-F1 with 95 % intervals, verbatim share of fillers).

    python benchmarks/snap_fillers.py --gold data/slurp-tts/test/test600.jsonl --run runs/composed/RUN --eval test-text
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, required=True, help="the canonical JSONL the run was evaluated on")
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--eval", default="test-text", help="folder under RUN/eval/ (text modality)")
    parser.add_argument("--cutoffs", type=float, nargs="+", default=[60.0],
                        help="snap a filler to the most similar run at rapidfuzz ratio >= CUTOFF (0: always)")
    args = parser.parse_args()

    from slufit.data.example import read_examples
    from slufit.models.composed.target import snap_fillers
    from slufit.scoring import evaluate

    examples = read_examples(args.gold)
    text = {e.id: e.text for e in examples}
    lines = [json.loads(line) for line in (args.run / "eval" / args.eval / "predictions.jsonl").read_text().splitlines()]
    keys = ("scenario", "action", "entities")
    plain = {line["slurp_id"]: {k: line[k] for k in keys} for line in lines}
    variants = [("as generated", plain)] + [
        (f"snapped >= {cutoff:g}", {key: snap_fillers(p, text[key], cutoff) for key, p in plain.items()})
        for cutoff in args.cutoffs]
    for name, predictions in variants:
        m = evaluate(examples, predictions, mode="text")
        ci, v = m["ci"], m["verbatim_fillers"]
        print(f"{name:16s} intent {100 * m['intent']['f1']:.2f} [{100 * ci['intent_accuracy']['low']:.2f}, "
              f"{100 * ci['intent_accuracy']['high']:.2f}]  SLU-F1 {100 * m['slu_f1']['f1']:.2f} "
              f"[{100 * ci['slu_f1']['low']:.2f}, {100 * ci['slu_f1']['high']:.2f}]  verbatim fillers "
              f"{v['verbatim']}/{v['predicted']} ({100 * (v['share'] or 0):.2f} %)")


if __name__ == "__main__":
    main()
