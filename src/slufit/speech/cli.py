"""`slufit speech synth`: synthesize speech for a canonical dataset; `slufit speech speakers`: list the pools."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from slufit.data.example import Recording, read_examples, resolve_audio, write_examples
from slufit.errors import SlufitError
from slufit.speech.speakers import ENGLISH_ONLY, SPLITS, speakers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="speech_command", metavar="ACTION", required=True)
    synth = sub.add_parser("synth", help="write DIR/audio/... and DIR/<data stem>.jsonl listing the recordings")
    synth.add_argument("--data", required=True, help="canonical JSONL (never modified)")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--ids", help="budget manifest (slufit data budget): synthesize only these examples")
    synth.add_argument("--speakers", choices=SPLITS, default="train",
                       help="speaker pool; test speakers are disjoint from train and unlabelled speakers "
                            "(default train)")
    synth.add_argument("--snr", type=float, help="add white noise at this SNR in dB (default: clean)")
    synth.add_argument("--workers", type=int, help="processes (default: all CPU cores)")
    synth.add_argument("--cache", help="audio cache folder (default DIR/.cache/tts)")
    pools = sub.add_parser("speakers", help="list the speaker pools of a locale")
    pools.add_argument("--locale", default="en-US")


def run(args: argparse.Namespace) -> int:
    if args.speech_command == "speakers":
        for split in SPLITS:
            if "+" in split or (split in ENGLISH_ONLY and args.locale != "en-US"):
                continue  # a union of the pools listed; or English-only engines
            for s in speakers(args.locale, split):
                print(f"{split:14} {s.id:30} voice={s.voice:26} rate={s.rate} pitch={s.pitch} range={s.pitch_range}")
        return 0
    from slufit.speech.synth import synthesize_examples

    data, out_dir = Path(args.data), Path(args.out)
    examples = read_examples(data)
    out_file = out_dir / data.name
    if out_file.resolve() == data.resolve():
        raise SlufitError(f"{out_file}: would overwrite the input; choose another --out")
    ids = None
    if args.ids:
        from slufit.data.budget import read_budget

        ids = read_budget(args.ids)["ids"]
        missing = set(ids) - {e.id for e in examples}
        if missing:
            raise SlufitError(f"{args.ids}: {len(missing)} id(s) are not in {data}, e.g. {sorted(missing)[0]!r} "
                              f"(a budget drawn from another file?)")
    # Recordings already listed keep working from the new folder: make relative paths absolute.
    examples = [e.with_recordings(Recording(str(resolve_audio(r, data)), r.speaker, r.duration)
                                  for r in e.recordings) for e in examples]
    stats: dict = {}
    start = time.perf_counter()
    result = synthesize_examples(examples, out_dir, speakers=args.speakers, ids=ids, snr_db=args.snr,
                                 workers=args.workers, cache_dir=args.cache, stats=stats)
    wall = time.perf_counter() - start
    write_examples(out_file, result)
    print(f"{out_file}: {stats['synthesized'] + stats['cached']} recordings ({stats['synthesized']} synthesized, "
          f"{stats['cached']} from cache), {stats['seconds'] / 60:.1f} audio minutes in {wall:.1f} s")
    return 0
