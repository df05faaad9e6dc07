"""How far the bridge's hearing reaches: the same test utterances voiced by espeak-ng's test speakers and by
a held-out engine (Flite, which nothing in slufit trains on), heard by one bridge, and understood by runs.

    python benchmarks/held_out_engine.py --bridge runs/demo/model --test runs/demo/corpus/en-US/test.jsonl \\
        [--run runs/demo/mono/text_only-p00-s0-en-US ...] [--work /tmp/held_out]

Prints, per engine, the bridge's CER / WER (greedy CTC units against the normalised transcript), and, per run,
intent accuracy and SLU-F1 with 95 % intervals (`slufit eval`), with the held-out engine's figures as a ratio of
espeak-ng's (the target: text-only keeps >= 85 % of its espeak-ng intent accuracy). Needs `apt-get install flite`.
`--held-out flite-unshared` keeps to Flite's rms and awb: for a bridge that heard Festival, whose slt and kal voices
were recorded from the same people as Flite's slt and kal16.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ESPEAK = "espeak-ng test speakers"
HELD_OUT = {"flite": "Flite (held out)", "flite-unshared": "Flite rms, awb (held out)"}


def voice(test: Path, work: Path, engines: dict[str, str]) -> dict[str, Path]:
    out = {}
    for name, pool in engines.items():
        folder = work / pool
        if not (folder / test.name).is_file():
            subprocess.run([sys.executable, "-m", "slufit.cli", "speech", "synth", "--data", str(test), "--out",
                            str(folder), "--speakers", pool], check=True, stdout=subprocess.DEVNULL)
        out[name] = folder / test.name
    return out


def hearing(bridge: Path, data: Path) -> dict[str, float]:
    """The bridge's greedy CTC transcripts of every recording in `data` against the normalised text."""
    from slufit.data.audio import load_audio
    from slufit.data.example import read_examples, resolve_audio
    from slufit.models.bridge import ctc
    from slufit.models.bridge.model import load_bridge
    from slufit.models.bridge.pretrain import error_rates
    from slufit.models.bridge.units import normalize

    model = load_bridge(bridge)
    letters = model.head_units.replace(" ", "")
    refs, hyps = [], []
    examples = [e for e in read_examples(data) if e.recordings]
    for start in range(0, len(examples), 32):
        chunk = examples[start:start + 32]
        waves = [load_audio(resolve_audio(e.recordings[0], data)) for e in chunk]
        posts = ctc.posteriors(model.module.head, model.ears.encode(waves))
        hyps += ["".join(model.head_units[u] for u in ctc.greedy_units(p)).strip() for p in posts]
        refs += [normalize(e.text, letters) for e in chunk]
    return {**error_rates(refs, hyps), "n": len(refs)}


def understanding(run: Path, data: Path, name: str) -> dict:
    subprocess.run([sys.executable, "-m", "slufit.cli", "eval", "--run", str(run), "--data", str(data), "--modality",
                    "speech", "--name", name], check=True, stdout=subprocess.DEVNULL)
    return json.loads((run / "eval" / name / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridge", type=Path, required=True, help="a pretrained bridge folder (or OUT/model of a demo)")
    parser.add_argument("--test", type=Path, required=True, help="canonical en-US test JSONL (text; voiced here)")
    parser.add_argument("--run", type=Path, action="append", default=[], help="a trained tiny run to evaluate")
    parser.add_argument("--work", type=Path, default=Path("runs/held_out_engine"), help="where the voiced sets go")
    parser.add_argument("--held-out", choices=sorted(HELD_OUT), default="flite", help="the held-out speaker pool")
    args = parser.parse_args()
    engines = {ESPEAK: "test", HELD_OUT[args.held_out]: args.held_out}
    sets = voice(args.test, args.work, engines)
    rates = {name: hearing(args.bridge, path) for name, path in sets.items()}
    base = rates[ESPEAK]
    print(f"bridge {args.bridge} on {args.test} ({base['n']} utterances)")
    print(f"{'engine':<26} {'CER %':>7} {'WER %':>7} {'CER ratio':>10}")
    for name, r in rates.items():
        print(f"{name:<26} {100 * r['cer']:7.1f} {100 * r['wer']:7.1f} {r['cer'] / base['cer']:10.2f}")
    for run in args.run:
        scores = {name: understanding(run, path, f"held-out-engine-{engines[name]}") for name, path in sets.items()}
        print(f"\n{run.name}: intent acc. % / SLU-F1 % [95 % CI]")
        for name, m in scores.items():
            ci = m.get("ci", {})
            intent, slu = 100 * m["intent"]["f1"], 100 * m["slu_f1"]["f1"]
            lo_i, hi_i = (100 * ci["intent_accuracy"][k] for k in ("low", "high")) if ci else (float("nan"),) * 2
            lo_s, hi_s = (100 * ci["slu_f1"][k] for k in ("low", "high")) if ci else (float("nan"),) * 2
            ratio = intent / (100 * scores[ESPEAK]["intent"]["f1"] or 1)
            print(f"  {name:<26} {intent:6.2f} [{lo_i:.2f}, {hi_i:.2f}] / {slu:6.2f} [{lo_s:.2f}, {hi_s:.2f}]"
                  f"   intent ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
