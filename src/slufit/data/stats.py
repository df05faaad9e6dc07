"""`slufit data stats FILE`: what a canonical dataset holds (labels, audio coverage, hours).

Counts per locale, scenario, intent and entity type; examples with and without
audio; total audio minutes from each recording's `duration`, or from the file's
header when the duration is not recorded but the file exists.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from slufit.data.audio import duration_seconds
from slufit.data.example import Example, read_examples, resolve_audio


def compute_stats(examples: list[Example], data_file: str | os.PathLike) -> dict[str, Any]:
    """The statistics as a JSON-ready dict; counters are sorted by count, then name."""
    seconds, unknown, recordings = 0.0, 0, 0
    for example in examples:
        for recording in example.recordings:
            recordings += 1
            duration = recording.duration
            if duration is None:
                duration = duration_seconds(resolve_audio(recording, data_file))
            if duration is None:
                unknown += 1  # neither recorded nor on disk: left out of the total, and said so
            else:
                seconds += duration
    with_audio = sum(1 for e in examples if e.recordings)

    def ranked(counter: Counter) -> dict[str, int]:
        return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

    return {
        "file": str(data_file),
        "examples": len(examples),
        "with_audio": with_audio,
        "without_audio": len(examples) - with_audio,
        "recordings": recordings,
        "audio_minutes": round(seconds / 60, 2),
        "recordings_without_duration": unknown,
        "entities": sum(len(e.entities) for e in examples),
        "locales": ranked(Counter(e.locale for e in examples)),
        "scenarios": ranked(Counter(e.scenario for e in examples)),
        "intents": ranked(Counter(e.intent for e in examples)),
        "entity_types": ranked(Counter(ent.type for e in examples for ent in e.entities)),
    }


def print_stats(stats: dict[str, Any]) -> None:
    """A readable summary, then one table per label kind (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=stats["file"], show_header=False)
    for key in ("examples", "with_audio", "without_audio", "recordings", "audio_minutes",
                "recordings_without_duration", "entities"):
        summary.add_row(key.replace("_", " "), str(stats[key]))
    summary.add_row("locales / scenarios / intents / entity types",
                    " / ".join(str(len(stats[k])) for k in ("locales", "scenarios", "intents", "entity_types")))
    console.print(summary)
    for key in ("locales", "scenarios", "intents", "entity_types"):
        table = Table(title=key.replace("_", " "))
        table.add_column(key[:-1].replace("_", " "))
        table.add_column("count", justify="right")
        table.add_column("%", justify="right")
        total = sum(stats[key].values()) or 1
        for name, count in stats[key].items():
            table.add_row(name, str(count), f"{100 * count / total:.1f}")
        console.print(table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="canonical JSONL file")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    stats = compute_stats(read_examples(args.file), args.file)
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
    else:
        print_stats(stats)
    return 0
