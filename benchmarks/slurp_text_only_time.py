"""One text-only run of the SLURP CPU grid, composed (SmolLM2) against tiny, in one run: wall time of each whole
`slufit train` (load, training, final evaluation on test text and test speech), their ratio, and their scores.

    flock /tmp/slufit-heavy.lock python benchmarks/slurp_text_only_time.py --out runs/bench-slurp
    ... --bridge FOLDER        # a bridge folder (`slufit pretrain`'s) for both, instead of each config's own
    ... --tiny-bridge F1 --composed-bridge F2   # or one for each (the composed config's: composed/bridge.yaml)

Both configs are packaged (`slufit configs list`): configs/composed/slurp_text_only.yaml and
configs/tiny/slurp_text_only.yaml, data prepared by the commands at their top. Each run is a child process
with `--threads` torch threads; run it on a quiet machine (another job on the cores changes both times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = {"tiny": "configs/tiny/slurp_text_only.yaml", "composed": "configs/composed/slurp_text_only.yaml"}


def run(name: str, config: str, out: Path, overrides: list[str], threads: int) -> dict:
    run_dir = out / name
    if (run_dir / "summary.json").is_file():
        raise SystemExit(f"{run_dir} has a finished run: pick a fresh --out (a cached run would time nothing)")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    command = [sys.executable, "-m", "slufit.cli", "train", "--config", config, f"run_dir={run_dir}", *overrides]
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: slufit train failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return {"seconds": seconds, "metrics": summary["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a fresh folder for the two runs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override given to both runs (repeatable)")
    parser.add_argument("--bridge", help="a bridge folder for both models (tiny: model.name; composed: its bridge)")
    parser.add_argument("--tiny-bridge", help="a bridge folder for tiny only")
    parser.add_argument("--composed-bridge", help="a bridge folder for composed only")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tiny_bridge, composed_bridge = args.tiny_bridge or args.bridge, args.composed_bridge or args.bridge
    bridge = {"tiny": [f"model.name={tiny_bridge}"] if tiny_bridge else [],
              "composed": [f"model.options.bridge={composed_bridge}"] if composed_bridge else []}
    results = {name: run(name, config, args.out, args.overrides + bridge[name], args.threads)
               for name, config in RUNS.items()}

    print(f"{'model':10s} {'wall s':>8s}  {'test text intent / SLU-F1':>26s}  {'test speech intent / SLU-F1':>28s}")
    for name, r in results.items():
        cells = []
        for split in ("test-text", "test-speech"):
            m = r["metrics"].get(split)
            cells.append(f"{100 * m['intent']['f1']:.2f} / {100 * m['slu_f1']['f1']:.2f}" if m else "-")
        print(f"{name:10s} {r['seconds']:8.0f}  {cells[0]:>26s}  {cells[1]:>28s}")
    ratio = results["composed"]["seconds"] / results["tiny"]["seconds"]
    print(f"composed / tiny wall time: {ratio:.2f}x; composed {results['composed']['seconds'] / 60:.1f} min "
          f"(issue 21's bound: 20 min)")


if __name__ == "__main__":
    main()
