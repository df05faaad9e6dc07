"""`slufit demo`: the whole study on the embedded default, offline, on a CPU.

Orchestration only; every stage is another module's job and is cached or resumable:

    1 corpus     slufit.corpus.build_corpus             en-US and fr-FR templated SLU corpus
    2 speech     slufit.speech.synthesize_examples      train speakers for train, test speakers for test
    3 pretrain   slufit.models.bridge.pretrain          the tiny model's CTC bridge, on unlabelled speech (cached)
    4 grids      slufit.grid.runner                     configs/grids/demo-mono.yaml, demo-crosslingual.yaml
    5 report     OUT/report.md, the plots, and the table printed

Running it again finishes at once (each stage is skipped when its stamp matches);
interrupted, it resumes (finished runs are skipped, the interrupted one resumes
from its checkpoint). The sizes are the constants below: FULL is the main job
(meant to take at most ~20 minutes on 2 CPU cores), QUICK a small version for
tests and CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOCALES = ("en-US", "fr-FR")
SOURCE_LOCALE = "fr-FR"  # the cross-lingual grid's source language (configs/grids/demo-crosslingual.yaml)
# Locales whose unlabelled speech trains the bridge's CTC head (Whisper tiny.en ears are English-only).
BRIDGE_LOCALES = ("en-US",)
GRIDS = ("demo-mono", "demo-crosslingual")  # packaged grid configs: slufit/configs/grids/NAME.yaml
# Who may voice the bridge's unlabelled speech in the demo (slufit.models.bridge.pretrain.BRIDGE_POOLS).
BRIDGE_SPEAKERS = ("unlabelled", "unlabelled+festival")


@dataclass(frozen=True)
class DemoSizes:
    """Everything that sets how long the demo takes. The lead tunes FULL; QUICK only has to run."""

    # Corpus utterances per locale: SLU training (all voiced, budgets are drawn from them; n_train_source for the
    # cross-lingual source locale fr-FR), dev (the bridge's CER / WER, test speakers), test, pretraining pool.
    n_train: int
    n_train_source: int
    n_dev: int
    n_test: int
    n_pretrain: int
    # The bridge (slufit.models.bridge.pretrain.BridgeConfig fields): pool utterances and word sequences per
    # locale, held-out clips, CTC epochs, head sizes (empty: its defaults).
    bridge_pool: int
    bridge_words: int
    bridge_heldout: int
    bridge_epochs: int
    # Words of the bridge's lexicon sweep (BridgeConfig.lexicon_words): the head's real readings of them.
    bridge_lexicon: int
    # Fine-tuning: passes over the data (curriculum: text_epochs text-only, then mix_epochs mixed; the
    # cross-lingual grid: crosslingual_epochs), batch size.
    epochs: float
    text_epochs: float
    mix_epochs: float
    batch_size: int
    lr: float
    mix_lr: float
    # Generation limit at evaluation (a compact target of the corpus is ~10-40 tokens).
    max_new_tokens: int
    # Speech fractions (%) of the monolingual grid; None: the grid file's. Cross-lingual: share (%) of the
    # source-locale utterances with speech, and target-locale speech items.
    fractions: tuple[float, ...] | None
    source_fraction: float
    target_speech: int
    bridge_head: tuple[tuple[str, int], ...] = ()
    # The bridge's language model sizes (slufit.models.bridge.model.LMSizes fields); empty: its defaults.
    lm_sizes: tuple[tuple[str, int], ...] = ()
    # Share of text items fed as simulated bridge vectors (slufit.models.bridge.simulate); 0: plain text.
    simulate_text: float = 0.0
    # In those, the share of words that take one of the head's real readings of them (slufit.models.bridge.readings),
    # and whether a stage's speech items add their own readings.
    simulate_words: float = 0.0
    speech_readings: bool = False
    # Share of text items whose slot fillers are swapped for others of the same type (slufit.train.augment).
    filler_swap: float = 0.0
    crosslingual_epochs: float | None = None  # None: `epochs`


# FULL's choices are measured (docs/tiny.md): the LM learns to read its input (not to recall which filler goes
# with which sentence) when 9 in 10 text items have their fillers swapped, and it keeps improving with passes, so
# the demo spends its time on passes of a narrow LM (128 wide, 26 epochs) rather than on width; 3 in 4 text items
# are fed as simulated bridge vectors; 8 CTC epochs, as the prototype's 8-10. The curriculum's mixed stage runs
# at 1e-4: at 5e-4 it undid part of the converged text stage (2 % / 5 % SLU-F1 80.5 / 79.4 against 81.9 / 81.9).
# The cross-lingual grid (fr-FR: 500 texts, a quarter with speech; en-US: 2000 texts) is judged on intent
# accuracy, which needs fewer passes: 16 (12 reached 89.7 % of the mono 100 % run, under the 90 % target).
# These sizes keep the demo under 20 minutes: 30 + 12 epochs over 1000 fr-FR texts took 20 min 9 s. Session 4: the
# bridge hears 75 unlabelled speakers instead of the 12 training ones (BridgeConfig.speakers; mixing 2 %: intent
# +4.7, p = 0.005), and filler swaps draw fillers of about the same length (text-only 26 epochs: 100 -> 80 s). 30
# epochs did not raise the low-speech SLU-F1 shares (the 100 % run gained as much), so the demo keeps 26.
# 600 test utterances (300 before): at 300, two runs of about the same quality differed by 2-3 SLU-F1 points, inside
# a paired interval of +-3.6; the test set's part of that noise shrinks by 1/sqrt(2), for ~5 s of decoding a run.
FULL = DemoSizes(n_train=2000, n_train_source=500, n_dev=200, n_test=600, n_pretrain=2100, bridge_pool=2000,
                 bridge_words=4000, bridge_heldout=300, bridge_epochs=8, bridge_lexicon=10000, epochs=26,
                 text_epochs=26, mix_epochs=2,
                 batch_size=32, lr=1e-3, mix_lr=1e-4, max_new_tokens=64, fractions=None, source_fraction=25,
                 target_speech=40,
                 lm_sizes=(("hidden", 128), ("layers", 2), ("heads", 4), ("kv_heads", 2), ("intermediate", 384)),
                 simulate_text=0.75, simulate_words=0.5, speech_readings=True, filler_swap=0.9,
                 crosslingual_epochs=16)
QUICK = DemoSizes(n_train=24, n_train_source=24, n_dev=4, n_test=8, n_pretrain=28, bridge_pool=20, bridge_words=16, bridge_heldout=6,
                  bridge_epochs=1, bridge_lexicon=12, epochs=1, text_epochs=1, mix_epochs=1, batch_size=8, lr=1e-3,
                  mix_lr=5e-4,
                  max_new_tokens=16, fractions=(100,), source_fraction=100, target_speech=4,
                  bridge_head=(("d", 32), ("heads", 2)),
                  lm_sizes=(("hidden", 32), ("layers", 1), ("heads", 2), ("kv_heads", 1), ("intermediate", 64)),
                  simulate_text=0.75, simulate_words=0.5, speech_readings=True, filler_swap=0.9)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="a much smaller version (tests, CI): minutes, not tens")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                        help="seeds of every grid run (default 0); more seeds average out training noise")
    parser.add_argument("--key-seeds", type=int, default=1, metavar="N",
                        help="seeds 0..N-1 for the cells the regime verdict rests on (text-only, direct mixing at "
                             "2, 5 and 100 %%), while the other cells keep --seeds (default 1: no extra runs)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--bridge-speakers", choices=BRIDGE_SPEAKERS, default="unlabelled",
                        help="who voices the bridge's unlabelled speech: espeak-ng's 75 speakers (default), or those "
                             "and Festival's (unlabelled+festival: needs `apt-get install festival ...`, "
                             "docs/corpus_speech.md; measured to hear a held-out engine far better, docs/tiny.md)")


# ---------------------------------------------------------------- stages


class Stages:
    """Stage headers, timings, and stamps that let a finished stage be skipped on the next call."""

    def __init__(self, out: Path):
        from rich.console import Console

        self.console = Console(soft_wrap=True)  # log lines stay whole (greppable)
        self.out = out
        self.times: dict[str, float] = {}

    def header(self, number: str, name: str, what: str) -> float:
        self.console.rule(f"[bold]{number}/5 {name}[/bold]: {what}")
        return time.monotonic()

    def done(self, name: str, start: float, note: str = "") -> None:
        self.times[name] = time.monotonic() - start
        self.console.print(f"[green]{name} done[/green] in {self.times[name]:.1f} s{note}")

    def stamp_matches(self, name: str, params: dict) -> bool:
        path = self.out / ".stages" / f"{name}.json"
        return path.is_file() and json.loads(path.read_text(encoding="utf-8")) == params

    def write_stamp(self, name: str, params: dict) -> None:
        from slufit.files import write_json

        write_json(self.out / ".stages" / f"{name}.json", params)


def build_corpus_stage(stages: Stages, sizes: DemoSizes) -> Path:
    from slufit.corpus import build_corpus

    corpus = stages.out / "corpus"
    params = {"locales": list(LOCALES), "n_train": sizes.n_train, "n_train_source": sizes.n_train_source,
              "n_dev": sizes.n_dev, "n_test": sizes.n_test, "n_pretrain": sizes.n_pretrain, "seed": 0}
    start = stages.header("1", "corpus", f"embedded SLU corpus, {', '.join(LOCALES)}")
    if stages.stamp_matches("corpus", params):
        stages.done("corpus", start, " (cached)")
        return corpus
    counts = {}
    for locale in LOCALES:
        n_train = sizes.n_train_source if locale == SOURCE_LOCALE else sizes.n_train
        counts.update(build_corpus(corpus, locales=[locale], n_train=n_train, n_dev=sizes.n_dev, n_test=sizes.n_test,
                                   n_pretrain=sizes.n_pretrain, seed=0))
    stages.write_stamp("corpus", params)
    stages.done("corpus", start, ": " + "; ".join(f"{loc} {c}" for loc, c in counts.items()))
    return corpus


def speech_stage(stages: Stages, corpus: Path, sizes: DemoSizes) -> Path:
    """Voice every training utterance with train speakers and every test utterance with test speakers."""
    from slufit.data.example import read_examples, write_examples
    from slufit.speech.synth import synthesize_examples

    data = stages.out / "data"
    params = {"corpus": _fingerprint([corpus / loc / f"{s}.jsonl" for loc in LOCALES for s in ("train", "test")])}
    start = stages.header("2", "speech", "espeak-ng; train speakers -> train, test speakers -> test")
    if stages.stamp_matches("speech", params):
        stages.done("speech", start, " (cached)")
        return data
    for locale in LOCALES:
        for split, pool in (("train", "train"), ("test", "test")):
            examples = read_examples(corpus / locale / f"{split}.jsonl")
            voiced = synthesize_examples(examples, data / locale, speakers=pool, cache_dir=stages.out / "cache" / "tts",
                                         progress=False)
            write_examples(data / locale / f"{split}.jsonl", voiced)
            stages.console.print(f"  {locale} {split}: {len(voiced)} utterances, {pool} speakers")
    stages.write_stamp("speech", params)
    stages.done("speech", start)
    return data


def _fingerprint(paths: list[Path]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def bridge_config(corpus: Path, sizes: DemoSizes, threads: int, cache: Path, speakers: str = "unlabelled"):
    """The demo's bridge (a slufit.models.bridge.pretrain.BridgeConfig)."""
    from slufit.models.bridge.pretrain import BridgeConfig

    return BridgeConfig(locales=list(BRIDGE_LOCALES), corpus=str(corpus.resolve()),
                        pool_utterances=sizes.bridge_pool, word_sequences=sizes.bridge_words,
                        heldout=sizes.bridge_heldout, lexicon_words=sizes.bridge_lexicon,
                        eval_utterances=sizes.n_dev, epochs=sizes.bridge_epochs, speakers=speakers,
                        head=dict(sizes.bridge_head), threads=threads, cache_dir=str(cache.resolve()))


def pretrain_stage(stages: Stages, corpus: Path, sizes: DemoSizes, threads: int, speakers: str = "unlabelled") -> Path:
    """The tiny model's CTC bridge, trained on the corpus pretraining pool and frequent-word sequences
    (unlabelled speech; cached by the pretrain module itself). OUT/model links to it.

    It runs as `slufit pretrain` in a child process: measured, the LM training that follows in this process
    ran about 25 % slower after the bridge's training had run in it (benchmarks/RESULTS.md)."""
    import subprocess
    import sys
    from dataclasses import asdict

    import yaml

    from slufit.errors import SlufitError
    from slufit.files import atomic_open
    start = stages.header("3", "pretrain", "the CTC bridge learns characters from unlabelled speech (cached)")
    config = bridge_config(corpus, sizes, threads, stages.out / "cache", speakers)
    config_file = stages.out / ".stages" / "bridge.yaml"
    with atomic_open(config_file) as handle:
        yaml.safe_dump(asdict(config), handle, sort_keys=False)
    child = subprocess.Popen([sys.executable, "-m", "slufit.cli", "pretrain", "--config", str(config_file)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    for line in child.stdout:  # progress bars go to stderr, straight through
        lines.append(line.rstrip("\n"))
        stages.console.print(f"  {lines[-1]}", markup=False, highlight=False)
    if child.wait() != 0 or not lines or not Path(lines[-1]).is_dir():
        raise SlufitError(f"slufit pretrain --config {config_file} failed (exit {child.returncode}); its output is above")
    model = stages.out / "model"
    # A stable name for the cached bridge, so the grid configs can point at OUT/model.
    target = Path(lines[-1]).resolve()
    if not model.is_symlink() or model.resolve() != target:
        tmp = stages.out / ".model.tmp"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, model)
    stages.done("pretrain", start)
    return target


# The cells the regime verdict rests on (slufit.grid.regime): they get --key-seeds seeds.
KEY_CELLS = {"text_only": (0.0,), "mix": (2.0, 5.0, 100.0)}


def demo_grid(name: str, out: Path, data: Path, model: Path, sizes: DemoSizes, seeds: list[int],
              key_seeds: int = 1):
    """configs/grids/NAME.yaml with the demo's folders and sizes (a slufit.grid.spec.GridSpec)."""
    from slufit.errors import SlufitError
    from slufit.grid.spec import load_grid

    from slufit.resources import configs_root

    path = configs_root() / "grids" / f"{name}.yaml"
    if not path.is_file():
        raise SlufitError(f"{path}: the demo's grid config is missing from the installed package (reinstall slufit)")
    grid = load_grid(path, out=out / name.removeprefix("demo-"))
    grid.data = {k: str(data.resolve() / "{locale}" / f"{k}.jsonl") for k in ("train", "test")}
    grid.seeds = list(seeds)
    if sizes.fractions is not None and not grid.crosslingual:
        grid.fractions = [float(f) for f in sizes.fractions]
    if not grid.crosslingual and key_seeds > 1:
        grid.extra_seeds = [s for s in range(key_seeds) if s not in seeds]
        grid.extra_cells = {scheme: [f for f in fractions if f == 0.0 or f in grid.fractions]
                            for scheme, fractions in KEY_CELLS.items() if scheme in grid.schemes}
    if grid.crosslingual:
        grid.target_speech = sorted({0, sizes.target_speech})
        grid.fractions = [float(sizes.source_fraction)]
    options = {**grid.train_overrides.get("model", {}).get("options", {}),
               "encoder_cache_dir": str((out / "cache" / "segments").resolve())}
    if sizes.lm_sizes:
        options["lm_sizes"] = dict(sizes.lm_sizes)
    if sizes.simulate_text:
        options["simulate_text"] = sizes.simulate_text
    if sizes.simulate_words:
        options["simulate_words"] = sizes.simulate_words
    if sizes.speech_readings:
        options["speech_readings"] = True
    overrides = dict(grid.train_overrides)
    overrides["model"] = {**overrides.get("model", {}), "name": str(model), "options": options}
    epochs = sizes.crosslingual_epochs if grid.crosslingual and sizes.crosslingual_epochs else sizes.epochs
    overrides.update({"scheme.epochs": epochs, "scheme.text_epochs": sizes.text_epochs,
                      "scheme.mix_epochs": sizes.mix_epochs, "train.batch_size": sizes.batch_size,
                      "eval.max_new_tokens": sizes.max_new_tokens, "train.lr": sizes.lr, "scheme.mix_lr": sizes.mix_lr,
                      "data.filler_swap": sizes.filler_swap})
    grid.train_overrides = overrides
    return grid


def grid_stage(stages: Stages, name: str, data: Path, model: Path, sizes: DemoSizes, seeds: list[int],
               key_seeds: int = 1) -> Path:
    from slufit.grid.runner import run_grid

    grid = demo_grid(name, stages.out, data, model, sizes, seeds, key_seeds)
    start = stages.header(f"4{'ab'[GRIDS.index(name)]}", f"grid {name}",
                          f"{len(grid.runs())} runs into {grid.out}")
    run_grid(grid, log=lambda line: stages.console.print(f"  {line}", markup=False, highlight=False))
    stages.done(f"grid {name}", start)
    return grid.out


# ---------------------------------------------------------------- report


def combined_report(out: Path, grid_dirs: dict[str, Path], sizes: DemoSizes, seeds: list[int],
                    times: dict[str, float]) -> Path:
    """OUT/report.md: the demo's settings, then each grid's report (headings one level down, image links fixed)."""
    from slufit.files import atomic_open

    lines = ["# slufit demo: the study on the embedded default", "",
             "The reference study's schemes and speech fractions, run on the embedded tiny model (a CTC-bridge "
             "LALM: frozen Whisper tiny.en ears, a CTC head trained here on unlabelled speech, and a small Qwen2 "
             "language model that reads the head's posteriors through its own unit embeddings) and the embedded "
             f"templated corpus ({', '.join(LOCALES)}), voiced by espeak-ng with test speakers disjoint from "
             "training speakers. Rebuild a grid's report with `slufit grid report DIR`.", "",
             f"- Sizes: `{json.dumps(asdict(sizes))}`", f"- Seeds: {len(seeds)} ({', '.join(map(str, seeds))})",
             "- Stage times (this call; cached stages take ~0 s): "
             + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items()), ""]
    for title, grid_dir in grid_dirs.items():
        report = grid_dir / "report.md"
        if not report.is_file():
            continue
        text = report.read_text(encoding="utf-8")
        text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
        text = re.sub(r"\]\(([^)/]+\.png)\)", lambda m: f"]({grid_dir.name}/{m.group(1)})", text)
        lines += [text.replace("## Grid report:", f"## {title}:", 1), ""]
    path = out / "report.md"
    with atomic_open(path) as handle:
        handle.write("\n".join(lines))
    return path


def _short(value: float | None, lo: float | None, hi: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" + ("" if lo is None or hi is None else f" [{lo:.1f}, {hi:.1f}]")


def print_table(console: Any, grid_dir: Path) -> None:
    """The monolingual Table 1 in the terminal (rich)."""
    from rich.table import Table

    from slufit.grid.report import ROW_LABELS, make_cells, reference_cell, share
    from slufit.grid.results import gather, primary_eval

    results = gather(grid_dir)
    eval_name = primary_eval(results, "test-speech" if any("test-speech" in r.evals for r in results) else None)
    cells = make_cells(results, eval_name)
    full = reference_cell(cells, "mix")
    table = Table(title=f"{grid_dir.name}: {eval_name} (%, 95 % CI)")
    for column in ("scheme", "speech", "intent acc.", "SLU-F1", "of 100 %"):
        table.add_column(column, justify="left" if column == "scheme" else "right", no_wrap=True)
    for c in cells:
        m = c.mean
        reached = share(m["slu_f1"], full.mean["slu_f1"] if full else None)
        table.add_row(ROW_LABELS.get(c.scheme, c.scheme), f"{c.fraction:g} %",
                      _short(m["intent_acc"], m["intent_acc_lo"], m["intent_acc_hi"]),
                      _short(m["slu_f1"], m["slu_f1_lo"], m["slu_f1_hi"]), reached)
    console.print(table)


def run(args: argparse.Namespace) -> int:
    import torch

    from slufit.errors import SlufitError
    from slufit.files import write_json

    if not args.seeds or any(s < 0 for s in args.seeds):
        raise SlufitError("--seeds takes one or more non-negative integers")
    if args.key_seeds < 1:
        raise SlufitError("--key-seeds takes a count >= 1")
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    sizes = QUICK if args.quick else FULL
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out)
    started = time.monotonic()
    stages.console.print(f"[bold]slufit demo[/bold] -> {out} ({'quick' if args.quick else 'full'}; "
                         f"seeds {', '.join(map(str, args.seeds))}; {threads} threads)")
    corpus = build_corpus_stage(stages, sizes)
    data = speech_stage(stages, corpus, sizes)
    model = pretrain_stage(stages, corpus, sizes, threads, args.bridge_speakers)
    grid_dirs = {}
    for name in GRIDS:
        grid_dirs[name] = grid_stage(stages, name, data, model, sizes, args.seeds, args.key_seeds)
    start = stages.header("5", "report", f"{out / 'report.md'} and plots")
    report = combined_report(out, {"Monolingual (en-US)": grid_dirs[GRIDS[0]],
                                   "Cross-lingual (fr-FR speech -> en-US)": grid_dirs[GRIDS[1]]},
                             sizes, args.seeds, stages.times)
    print_table(stages.console, grid_dirs[GRIDS[0]])
    stages.done("report", start)
    total = time.monotonic() - started
    # This call's stage times, for benchmarks/demo_stages.py (cached stages take ~0 s).
    write_json(out / "stage_times.json", {"total": round(total, 1), "quick": args.quick, "seeds": args.seeds,
                                          "key_seeds": args.key_seeds, "threads": threads,
                                          "stages": {k: round(v, 1) for k, v in stages.times.items()}})
    stages.console.print(f"[bold]demo finished[/bold] in {total:.0f} s; report: {report}")
    return 0
