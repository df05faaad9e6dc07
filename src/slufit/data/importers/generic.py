"""Users' own data, JSONL or CSV -> canonical examples, with configurable field names.

Each record needs a text and either an intent (`scenario_action`) or a scenario and
an action. Entities are optional: a JSON list of {"type", "filler"} objects
(`--entities-field`; in CSV a JSON string) or bracket-annotated text
(`--annotation-field`, MASSIVE style `[type : filler]`). An optional audio path is
resolved against `--audio-root` (default: the source file's folder).
Fillers are lowercased and whitespace-normalised, as SLURP's scorer compares them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from slufit.data.importers.common import (
    AudioLocator, Imported, build_example, normalize_filler, parse_annotation, read_csv, read_jsonl, split_intent,
)
from slufit.errors import DataError

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-field", default="text", help="field with the utterance text (default: text)")
    parser.add_argument("--intent-field", default="intent", help="field with scenario_action (default: intent)")
    parser.add_argument("--scenario-field", default="scenario", help="used with --action-field when there is no intent")
    parser.add_argument("--action-field", default="action", help="see --scenario-field (default: action)")
    parser.add_argument("--entities-field", default="entities",
                        help='JSON list of {"type", "filler"} (default: entities)')
    parser.add_argument("--annotation-field", help="text annotated with [type : filler] spans, instead of --entities-field")
    parser.add_argument("--audio-field", default="audio", help="audio file path, relative to --audio-root (default: audio)")
    parser.add_argument("--speaker-field", default="speaker", help="speaker name of the recording (default: speaker)")
    parser.add_argument("--id-field", default="id", help="unique id (default: id; missing ids become <file stem>-<line>)")
    parser.add_argument("--locale-field", default="locale", help="locale such as en-US (default: locale)")
    parser.add_argument("--locale", default="en-US", help="locale of records without a locale field (default: en-US)")
    parser.add_argument("--source", help="value of the examples' source field (default: the file's stem)")


def _entities(record: dict[str, Any], args: argparse.Namespace) -> list[dict[str, str]]:
    if args.annotation_field:
        if args.annotation_field not in record:
            return []
        try:
            return parse_annotation(str(record[args.annotation_field]))[1]
        except ValueError as err:
            raise ValueError(f"field '{args.annotation_field}': {err}") from None
    value = record.get(args.entities_field, [])
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"field '{args.entities_field}' is not a JSON list ({err.msg})") from None
    if not isinstance(value, list):
        raise ValueError(f"field '{args.entities_field}' must be a list of {{type, filler}} objects")
    out = []
    for i, entity in enumerate(value):
        if not isinstance(entity, dict) or not isinstance(entity.get("filler"), str):
            raise ValueError(f"{args.entities_field}[{i}] must be an object with 'type' and a string 'filler'")
        out.append({**entity, "filler": normalize_filler(entity["filler"])})
    return out


def _fields(record: dict[str, Any], number: int, src: Path, args: argparse.Namespace) -> dict[str, Any]:
    if args.text_field not in record:
        raise ValueError(f"missing field '{args.text_field}' (the text; see --text-field)")
    scenario, action = record.get(args.scenario_field), record.get(args.action_field)
    intent = record.get(args.intent_field)
    if scenario in (None, "") or action in (None, ""):
        if intent in (None, ""):
            raise ValueError(f"missing field '{args.intent_field}' (or '{args.scenario_field}' and "
                             f"'{args.action_field}'; see --intent-field)")
        if not isinstance(intent, str):
            raise ValueError(f"field '{args.intent_field}' must be a string, got {type(intent).__name__}")
        scenario, action = split_intent(intent)
    return {
        "id": str(record.get(args.id_field) or f"{src.stem}-{number}"),
        "locale": record.get(args.locale_field) or args.locale,
        "text": record[args.text_field], "scenario": scenario, "action": action,
        "intent": intent if intent not in (None, "") else f"{scenario}_{action}",
        "entities": _entities(record, args), "source": args.source or src.stem,
    }


def convert(src: Path, args: argparse.Namespace, out_dir: Path) -> Imported:
    locator = AudioLocator(out_dir, args.audio_root or [src.resolve().parent])
    records = read_csv(src) if args.format == "csv" else read_jsonl(src)
    examples = []
    for number, record in records:
        where = f"{src}:{number}"
        try:
            fields = _fields(record, number, src, args)
        except ValueError as err:
            raise DataError(f"{where}: {err}") from None
        audio = record.get(args.audio_field)
        if audio not in (None, ""):
            if not isinstance(audio, str):
                raise DataError(f"{where}: field '{args.audio_field}' must be a path string")
            speaker = str(record.get(args.speaker_field) or "UNK")
            fields["recordings"] = [locator.recording(audio, speaker).to_dict()]
        examples.append(build_example(fields, where))
    return Imported({"": examples}, locator.count, locator.missing)
