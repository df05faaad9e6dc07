"""Speech synthesis throughput: seconds of audio made per second of wall time, 1 worker vs all cores.

    python benchmarks/synth_throughput.py [--n 400] [--locales en-US,fr-FR,de-DE,es-ES]

Synthesizes the first N training utterances of each locale of a freshly built
embedded corpus into empty folders (so nothing comes from the cache), once with
one worker and once with every core, then once more from the cache; prints the
real-time factors. The target is >= 100x real time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from slufit.corpus.generator import build_corpus
from slufit.data.example import read_examples
from slufit.speech.synth import synthesize_examples


def measure(examples, out: Path, workers: int) -> tuple[float, float, dict]:
    stats: dict = {}
    start = time.perf_counter()
    synthesize_examples(examples, out, workers=workers, progress=False, stats=stats)
    wall = time.perf_counter() - start
    return stats["seconds"], wall, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="utterances per locale (default 400)")
    parser.add_argument("--locales", default="en-US,fr-FR,de-DE,es-ES")
    args = parser.parse_args()
    locales = args.locales.split(",")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_corpus(tmp / "corpus", locales, n_train=args.n, n_dev=0, n_test=0, n_pretrain=0, seed=0)
        examples = [e for loc in locales for e in read_examples(tmp / "corpus" / loc / "train.jsonl")]
        print(f"{len(examples)} utterances ({', '.join(locales)}), {cores} CPU cores")
        rows = []
        for label, workers, folder in (("1 worker", 1, "one"), (f"{cores} workers", cores, "all"),
                                       (f"{cores} workers, cached", cores, "all")):
            audio, wall, stats = measure(examples, tmp / folder, workers)
            rows.append((label, audio, wall, stats["synthesized"]))
        for label, audio, wall, synthesized in rows:
            print(f"{label:22} {audio:8.1f} s audio in {wall:6.2f} s wall = {audio / wall:7.1f}x real time "
                  f"({synthesized} synthesized)")
        print(f"speed-up from {cores} workers: {rows[0][2] / rows[1][2]:.2f}x")


if __name__ == "__main__":
    main()
