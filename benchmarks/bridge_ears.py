"""Which ears hear French best? The CTC bridge trained on the fr-FR pool with Whisper tiny.en vs Whisper base.

Whisper tiny.en is English-only; Whisper base (multilingual) is ~3x its encoder cost. This trains the same
bridge (same unlabelled fr-FR pool and word sequences, same head, same epochs) on each encoder's frames and
prints CER / WER on fr-FR SLU dev speech by held-out speakers, with the time each took, in one run:

    python benchmarks/bridge_ears.py [--out /tmp/bridge-ears] [--locale fr-FR] [--pool 1000] [--words 2000]

Results are cached per configuration (slufit.models.bridge.pretrain), so a second call only prints.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bridge-ears"))
    parser.add_argument("--locale", default="fr-FR")
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from slufit.corpus import build_corpus
    from slufit.models.bridge.pretrain import BridgeConfig, pretrain

    corpus = args.out / "corpus"
    if not (corpus / args.locale / "pretrain.jsonl").is_file():
        build_corpus(corpus, locales=[args.locale], n_train=10, n_dev=200, n_test=10, n_pretrain=args.pool + 100, seed=0)
    rows = {}
    for ears in (None, "whisper-base"):
        config = BridgeConfig(locales=[args.locale], corpus=str(corpus), pool_utterances=args.pool,
                              word_sequences=args.words, epochs=args.epochs, ears=ears, threads=args.threads,
                              cache_dir=str(args.out / "cache"))
        start = time.monotonic()
        folder = pretrain(config, log=lambda line: None)
        summary = json.loads((folder / "summary.json").read_text())
        rows[ears or "whisper-tiny.en"] = {**summary["rates"][args.locale], "seconds": summary["seconds"],
                                           "this_call_s": round(time.monotonic() - start, 1)}
    base, tiny = rows["whisper-base"], rows["whisper-tiny.en"]
    print(f"{args.locale} bridge, pool {args.pool} + {args.words} word sequences, {args.epochs} CTC epochs:")
    for name, r in rows.items():
        print(f"  {name:16s} CER {100 * r['cer']:.1f} %  WER {100 * r['wer']:.1f} %  (held-out unlabelled CER "
              f"{100 * r['heldout_cer']:.1f} %)  ears {r['seconds']['ears']:.0f} s, CTC {r['seconds']['train']:.0f} s")
    print(f"  base / tiny.en: CER x{base['cer'] / tiny['cer']:.2f}, ears time x{base['seconds']['ears'] / tiny['seconds']['ears']:.2f}")


if __name__ == "__main__":
    main()
