"""The demo's stage times: `slufit demo` from nothing, then again (everything cached), in one run.

    python benchmarks/demo_stages.py                 # the full demo (about 20 minutes on 2 quiet cores)
    python benchmarks/demo_stages.py --quick         # the quick demo (about a minute)
    python benchmarks/demo_stages.py --key-seeds 3   # with three seeds for the regime's cells

Prints each stage's seconds and share of the first call, and the second call's time as a ratio of the
first (the demo's target: <= 20 minutes from nothing, <= 60 s again). Run it with nothing else on the
machine: the stage times are wall-clock times.
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


def demo(out: Path, extra: list[str]) -> tuple[float, dict]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "slufit.cli", "demo", "--out", str(out), *extra],
                          env={**os.environ, "TQDM_DISABLE": "1"}, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"slufit demo failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - start, json.loads((out / "stage_times.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--key-seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, help="demo folder (default: a fresh temporary one)")
    args = parser.parse_args()
    extra = (["--quick"] if args.quick else []) + ["--key-seeds", str(args.key_seeds)]
    with tempfile.TemporaryDirectory(prefix="slufit-demo-bench-") as tmp:
        out = args.out or Path(tmp) / "demo"
        first, stages = demo(out, extra)
        second, _ = demo(out, extra)
    print(f"slufit demo {' '.join(extra)}: first call {first:.0f} s ({first / 60:.1f} min), "
          f"second call {second:.1f} s ({second / first:.3f} of the first)")
    print(f"{'stage':<28} {'seconds':>8} {'share':>7}")
    for name, seconds in stages["stages"].items():
        print(f"{name:<28} {seconds:8.1f} {100 * seconds / stages['total']:6.1f} %")
    print(f"{'total (inside the demo)':<28} {stages['total']:8.1f}")


if __name__ == "__main__":
    main()
