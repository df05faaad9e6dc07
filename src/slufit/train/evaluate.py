"""Evaluation: batched generation through the adapter -> parse -> SLURP scorer, per locale.

`slufit eval --run RUN_DIR --data FILE --modality speech|text [--beams N]` loads RUN_DIR/model
and writes RUN_DIR/eval/<name>/predictions.jsonl (SLURP prediction lines: `file` for speech
items, `slurp_id` for text items) and metrics.json (SLURP metrics with 95 % CIs,
`parse_failures`, and the same metrics per locale). The training loop writes the same files
through `evaluate_to_dir`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from slufit.data.example import Example
from slufit.errors import SlufitError
from slufit.files import atomic_open, write_json
from slufit.models.base import SLUItem, SLUModel


def eval_items(examples: Sequence[Example], files: Sequence[Path], modality: str) -> list[SLUItem]:
    """Text: one item per example. Speech: one item per recording (SLURP scores every recording)."""
    from slufit.data.example import resolve_audio

    if modality == "text":
        return [SLUItem(e, "text") for e in examples]
    return [SLUItem(e, "speech", resolve_audio(r, f), r.speaker) for e, f in zip(examples, files) for r in e.recordings]


def item_key(item: SLUItem) -> str:
    """The scorer's key: the recording path as listed in the example, or the example id."""
    if item.modality == "text":
        return item.example.id
    return next(r.path for r in item.example.recordings
                if item.audio_path is not None and item.audio_path.as_posix().endswith(Path(r.path).as_posix()))


def generate_all(model: SLUModel, items: Sequence[SLUItem], beams: int, batch_size: int, max_new_tokens: int,
                 accelerator: Any = None) -> list[str]:
    """Generated text for every item, in order. Items are batched by length (little padding) and,
    with several processes, split between them and gathered back once.

    Every rank runs the same number of generate calls (a rank short of items repeats one and drops its
    answer): a sharded model's layers gather their parameters in every forward, so all ranks must enter
    together (slufit.train.distributed)."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    ordered = sorted(range(len(items)), key=lambda i: len(items[i].example.text))
    order = ordered[rank::world]
    calls = -(-len(ordered[0::world]) // batch_size)  # rank 0 holds the most items
    mine: list[tuple[int, str]] = []
    for call in range(calls):
        chunk = order[call * batch_size:(call + 1) * batch_size]
        texts = model.generate([items[i] for i in chunk or ordered[:1]], num_beams=beams,
                               max_new_tokens=max_new_tokens)
        mine += zip(chunk, texts)  # nothing from a repeated item
    if world > 1:
        from accelerate.utils import gather_object
        mine = gather_object(mine)
    out = [""] * len(items)
    for index, text in mine:
        out[index] = text
    return out


def score(examples: Sequence[Example], items: Sequence[SLUItem], texts: Sequence[str]
          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """SLURP prediction lines and metrics (overall, with CIs and parse failures, and per locale)."""
    from slufit.scoring import evaluate
    from slufit.scoring.parse import parse_prediction

    lines, predictions, failures = [], {}, 0
    by_locale: dict[str, dict[str, dict]] = {}
    for item, text in zip(items, texts):
        prediction, ok = parse_prediction(text)
        failures += not ok
        key = item_key(item)
        predictions[key] = prediction
        by_locale.setdefault(item.example.locale, {})[key] = prediction
        key_name = "file" if item.modality == "speech" else "slurp_id"
        lines.append({key_name: key, **prediction, "generated": text})
    mode = "audio" if items and items[0].modality == "speech" else "text"
    metrics = evaluate(examples, predictions, missing_as_wrong=True, ci=True, mode=mode)
    metrics["parse_failures"] = failures
    metrics["items"] = len(items)
    metrics["per_locale"] = {
        locale: {**evaluate([e for e in examples if e.locale == locale], preds, missing_as_wrong=True, ci=True,
                            mode=mode),
                 "parse_failures": sum(not parse_prediction(t)[1] for i, t in zip(items, texts)
                                       if i.example.locale == locale)}
        for locale, preds in sorted(by_locale.items())
    }
    return lines, metrics


def evaluate_to_dir(model: SLUModel, examples: Sequence[Example], files: Sequence[Path], modality: str,
                    out_dir: Path | None, beams: int = 3, batch_size: int = 16, max_new_tokens: int = 128,
                    accelerator: Any = None) -> dict[str, Any]:
    """Generate, parse and score; the main process writes predictions.jsonl then metrics.json into out_dir."""
    items = eval_items(examples, files, modality)
    if not items:
        raise SlufitError(f"nothing to evaluate with {modality} input: the data has no "
                          f"{'recordings' if modality == 'speech' else 'examples'}")
    texts = generate_all(model, items, beams, batch_size, max_new_tokens, accelerator)
    lines, metrics = score(examples, items, texts)
    metrics["modality"], metrics["beams"] = modality, beams
    if out_dir is not None and (accelerator is None or accelerator.is_main_process):
        with atomic_open(Path(out_dir) / "predictions.jsonl") as handle:
            for line in lines:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        write_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    """One line: intent accuracy and SLU-F1 (percent) with their 95 % intervals."""
    ci = metrics.get("ci", {})
    parts = []
    for name, value in (("intent", metrics["intent"]["f1"]), ("SLU-F1", metrics["slu_f1"]["f1"])):
        interval = ci.get("intent_accuracy" if name == "intent" else "slu_f1")
        text = f"{name} {100 * value:.2f}"
        if isinstance(interval, dict) and "low" in interval:
            text += f" [{100 * interval['low']:.2f}, {100 * interval['high']:.2f}]"
        parts.append(text)
    return ", ".join(parts) + f" (n={metrics.get('n')}, parse failures {metrics.get('parse_failures', 0)})"


# ---- the `slufit eval` command ----

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="run folder written by `slufit train` (uses RUN/model)")
    parser.add_argument("--data", required=True, type=Path, help="canonical JSONL file to evaluate on")
    parser.add_argument("--modality", required=True, choices=("speech", "text"), help="input the model gets")
    parser.add_argument("--beams", type=int, default=None, help="beam width (default: the run's eval.beams)")
    parser.add_argument("--batch-size", type=int, default=None, help="items per generation batch")
    parser.add_argument("--name", default=None, help="output folder name under RUN/eval/ (default: <data stem>-<modality>)")


def run(args: argparse.Namespace) -> int:
    from slufit.data.example import read_examples
    from slufit.models.registry import load_model
    from slufit.train.config import load_config

    model_dir = args.run / "model"
    if not model_dir.is_dir():
        raise SlufitError(f"{model_dir}: no such folder; is {args.run} a finished `slufit train` run?")
    config = load_config(args.run / "config.yaml") if (args.run / "config.yaml").is_file() else None
    beams = args.beams or (config.eval.beams if config else 3)
    batch_size = args.batch_size or (config.eval.batch_size if config else 16)
    max_new_tokens = config.eval.max_new_tokens if config else 128
    if beams < 1 or batch_size < 1:
        raise SlufitError("--beams and --batch-size must be >= 1")
    examples = read_examples(args.data)
    # A saved run model keeps its own LoRA setting; the other load options, and the dtype the run trained in
    # (slufit.train.precision), still apply.
    from slufit.train.precision import load_dtype, load_options

    # The model loads on the CPU, as before: an explicit model.dtype is honoured, auto resolves to float32 there.
    if config is not None:
        options = {k: v for k, v in load_options(config, "cpu").items() if k != "lora"}
    else:
        options = {"dtype": load_dtype("auto", {}, "cpu")}
    model = load_model(str(model_dir), **options)
    model.module.eval()
    name = args.name or f"{args.data.stem}-{args.modality}"
    out_dir = args.run / "eval" / name
    metrics = evaluate_to_dir(model, examples, [args.data] * len(examples), args.modality, out_dir,
                              beams=beams, batch_size=batch_size, max_new_tokens=max_new_tokens)
    print(f"{name}: {headline(metrics)}")
    print(f"wrote {out_dir / 'predictions.jsonl'} and {out_dir / 'metrics.json'}")
    return 0
