"""SLURP (Bastianelli et al., 2020) release JSONL -> canonical examples.

One example per `slurp_id`: id `slurp-<slurp_id>`, text = `sentence`, locale en-US.
Labels are built the way the official scorer builds its gold (scripts/evaluation,
`release2prediction`): scenario and action from their own fields, intent =
scenario_action (the release's `intent` field disagrees on a few lines and the
scorer ignores it), and each entity filler = the lowercased token surfaces of its
span joined by single spaces. Recording paths keep SLURP's file name as their last
component, because audio predictions are keyed by that name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slufit.data.importers.common import AudioLocator, Imported, build_example, read_jsonl
from slufit.errors import DataError



def add_arguments(parser: argparse.ArgumentParser) -> None:
    """SLURP needs no options beyond the common ones."""


def gold_entities(record: dict) -> list[dict[str, str]]:
    """Entities exactly as the official SLURP scorer constructs gold: lowercased token surfaces, space-joined."""
    tokens = record["tokens"]
    return [
        {"type": entity["type"], "filler": " ".join(tokens[i]["surface"].lower() for i in entity["span"])}
        for entity in record["entities"]
    ]


def convert(src: Path, args: argparse.Namespace, out_dir: Path) -> Imported:
    locator = AudioLocator(out_dir, args.audio_root or [out_dir])
    examples = []
    seen: dict[int, int] = {}
    disagreeing_intent = 0
    for number, record in read_jsonl(src):
        where = f"{src}:{number}"
        for name in ("slurp_id", "sentence", "scenario", "action", "tokens", "entities"):
            if name not in record:
                raise DataError(f"{where}: missing field '{name}' (is this a SLURP release file?)")
        slurp_id = record["slurp_id"]
        if slurp_id in seen:
            raise DataError(f"{where}: duplicate slurp_id {slurp_id} (first on line {seen[slurp_id]})")
        seen[slurp_id] = number
        try:
            entities = gold_entities(record)
        except (IndexError, KeyError, TypeError) as err:
            raise DataError(f"{where}: bad entity span or token ({type(err).__name__}: {err})") from None
        if record.get("intent") != f"{record['scenario']}_{record['action']}":
            disagreeing_intent += 1
        recordings = []
        for i, rec in enumerate(record.get("recordings") or []):
            if not isinstance(rec, dict) or not isinstance(rec.get("file"), str) or not rec["file"]:
                raise DataError(f"{where}: recordings[{i}] has no 'file' name")
            recordings.append(locator.recording(rec["file"]).to_dict())
        examples.append(build_example({
            "id": f"slurp-{slurp_id}", "locale": "en-US", "text": record["sentence"],
            "scenario": record["scenario"], "action": record["action"],
            "intent": f"{record['scenario']}_{record['action']}",
            "entities": entities, "recordings": recordings, "source": "slurp",
        }, where))
    notes = []
    if disagreeing_intent:
        notes.append(f"{disagreeing_intent} line(s) have an 'intent' field that is not scenario_action; "
                     "used scenario_action, as the official scorer does")
    return Imported({"": examples}, locator.count, locator.missing, notes)
