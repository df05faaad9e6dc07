"""Several workers on one grid: a 4-run quick grid trained by 1 worker, then by 2 concurrent workers.

    python benchmarks/grid_workers.py                  # prints the wall times, their ratio and the load
    python benchmarks/grid_workers.py --out /tmp/gw    # keep the folders

1. `slufit demo --quick` builds the data and the pretrained tiny model (and warms the shared
   encoder cache, so no configuration below pays for it).
2. A 4-run grid from the demo's monolingual grid (its grid.yaml: same model, data and training
   settings): direct mixing and curriculum at 50 and 100 % speech.
3. `slufit grid` on it, each time into a fresh grid folder: 1 worker with 1 thread; 2 concurrent
   workers with 1 thread each on the same folder (the locks share the runs out); and, for
   comparison, 1 worker with 2 threads. Each run is checked to have been trained exactly once
   (its grid_log.jsonl).

The load average (os.getloadavg) is printed before and after each configuration: on a shared
machine it says how many cores the workers really had.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def slufit(args: list[str], threads: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as handle:
        return subprocess.Popen([sys.executable, "-m", "slufit.cli", *args], stdout=handle, stderr=subprocess.STDOUT,
                                env=env)


def load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def run_workers(grid_file: Path, out: Path, workers: int, threads: int) -> dict:
    before = load()
    start = time.monotonic()
    procs = [slufit(["grid", "--config", str(grid_file), "--out", str(out)], threads, out.parent / f"{out.name}-{i}.log")
             for i in range(workers)]
    for i, proc in enumerate(procs):
        if proc.wait() != 0:
            sys.exit(f"worker {i} failed; see {out.parent / f'{out.name}-{i}.log'}")
    wall = time.monotonic() - start
    trainers = {}
    for run_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        log = [json.loads(line) for line in (run_dir / "grid_log.jsonl").read_text().splitlines()]
        starts = [e["pid"] for e in log if e["event"] == "train"]
        assert len(starts) == 1 and log[-1]["event"] == "done", f"{run_dir.name} trained {len(starts)} times"
        trainers[run_dir.name] = starts[0]
    train_seconds = sum(json.loads((out / name / "summary.json").read_text())["train_seconds"] for name in trainers)
    return {"wall": wall, "runs": len(trainers), "workers_used": len(set(trainers.values())),
            "train_seconds": train_seconds, "load_before": before, "load_after": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="grid-workers-"))
    root.mkdir(parents=True, exist_ok=True)

    print(f"preparing: slufit demo --quick --out {root / 'demo'} (load {load()})", flush=True)
    start = time.monotonic()
    demo = slufit(["demo", "--quick", "--out", str(root / "demo"), "--threads", "2"], 2, root / "demo.log")
    if demo.wait() != 0:
        sys.exit(f"slufit demo --quick failed; see {root / 'demo.log'}")
    print(f"  done in {time.monotonic() - start:.0f} s", flush=True)
    grid = yaml.safe_load((root / "demo" / "mono" / "grid.yaml").read_text())
    grid.update({"name": "quick-4", "schemes": ["mix", "curriculum"], "fractions": [50, 100], "seeds": [0]})
    grid_file = root / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(grid, sort_keys=False))

    rows = []
    for label, workers, threads in (("1 worker, 1 thread", 1, 1), ("2 workers, 1 thread each", 2, 1),
                                    ("1 worker, 2 threads", 1, 2)):
        folder = root / label.replace(" ", "").replace(",", "-")
        result = run_workers(grid_file, folder, workers, threads)
        rows.append((label, result))
        print(f"{label:<26} {result['wall']:6.1f} s wall for {result['runs']} runs ({result['workers_used']} "
              f"worker(s) trained them; runs' own train_seconds sum {result['train_seconds']:.0f} s); "
              f"load average {result['load_before']} before, {result['load_after']} after", flush=True)
    one, two, threads2 = (r["wall"] for _, r in rows)
    print(f"ratio 1 worker / 2 workers: {one / two:.2f}x; 1 worker with 2 threads: {one / threads2:.2f}x "
          f"(cpu count {os.cpu_count()})")
    print(f"folders: {root}")


if __name__ == "__main__":
    main()
