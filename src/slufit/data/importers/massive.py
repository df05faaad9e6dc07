"""MASSIVE (FitzGerald et al., 2022) JSONL -> canonical examples, one set per partition.

Each line: `id`, `locale`, `partition` (train/dev/test), `scenario`, `intent`
(already scenario_action), `utt`, `annot_utt` with `[type : filler]` spans.
Ids are `massive-<locale>-<id>`: MASSIVE ids repeat across locales (the same
utterance translated), and Speech-MASSIVE uses the same ids for its recordings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slufit.data.importers.common import Imported, build_example, parse_annotation, read_jsonl
from slufit.errors import DataError



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partition", help="keep only this partition (train, dev or test)")


def massive_fields(record: dict, where: str) -> dict:
    """The canonical fields of one MASSIVE-style record (also used for Speech-MASSIVE rows)."""
    for name in ("id", "locale", "scenario", "intent", "utt", "annot_utt"):
        if record.get(name) in (None, ""):
            raise DataError(f"{where}: missing field '{name}'")
    scenario, intent = str(record["scenario"]), str(record["intent"])
    if not intent.startswith(scenario + "_"):
        raise DataError(f"{where}: intent {intent!r} does not start with scenario {scenario!r}")
    try:
        _, entities = parse_annotation(str(record["annot_utt"]))
    except ValueError as err:
        raise DataError(f"{where}: annot_utt: {err}") from None
    return {
        "id": f"massive-{record['locale']}-{record['id']}", "locale": str(record["locale"]),
        "text": " ".join(str(record["utt"]).split()), "scenario": scenario,
        "action": intent[len(scenario) + 1:], "intent": intent, "entities": entities,
    }


def convert(src: Path, args: argparse.Namespace, out_dir: Path) -> Imported:
    partitions: dict[str, list] = {}
    for number, record in read_jsonl(src):
        where = f"{src}:{number}"
        partition = str(record.get("partition") or "")
        if args.partition and partition != args.partition:
            continue
        fields = massive_fields(record, where)
        partitions.setdefault(partition, []).append(build_example({**fields, "source": "massive"}, where))
    if args.partition and not partitions:
        raise DataError(f"{src}: no line has partition {args.partition!r}")
    return Imported(partitions)
