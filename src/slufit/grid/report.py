"""The grid report: `results.csv`, `report.md` and PNG plots, rebuilt from run folders only.

`build_report(grid_dir)` reads every finished run folder under `grid_dir`
(slufit.grid.results), and writes:

- `results.csv`: one row per run;
- `report.md`: the study's Table 1 for this grid (per fraction and scheme:
  intent accuracy, entity F1, SLU-F1 with 95 % CIs, share of the full-speech
  SLU-F1), curriculum vs mixing at each fraction (paired bootstrap on the saved
  predictions), cross-lingual per-locale results, the reference study's figures
  beside ours, and what is needed to reproduce it;
- `slu_f1_vs_fraction.png` (and `slu_f1_by_locale.png` for cross-lingual grids).

Several seeds of one cell are averaged; the CI shown is then the mean of the
per-run bootstrap bounds (test-set sampling uncertainty), and the spread
between seeds is given separately as a standard deviation.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import yaml

from slufit.errors import SlufitError
from slufit.files import atomic_open, read_json
from slufit.grid import plots
from slufit.grid.cells import ROW_LABELS, Cell, fmt, mean_of, make_cells, reference_cell, share  # noqa: F401
from slufit.grid.spec import GRID_FILE
from slufit.grid.regime import ShareInterval, regime_verdict, share_bootstrap
from slufit.grid.results import (RunResult, gather, gold_examples, load_predictions, primary_eval, rows,
                                 write_csv)

CURVE_PNG = "slu_f1_vs_fraction.png"
LOCALE_PNG = "slu_f1_by_locale.png"

# The reference study (arXiv 2509.15389), SLURP test, Qwen2-Audio-7B-Instruct: (intent acc %, SLU-F1 %).
REFERENCE_STUDY = {
    ("text_only", 0.0): (83.60, 72.07),
    ("curriculum", 2.0): (85.74, 73.35),
    ("curriculum", 5.0): (86.42, 74.75),
    ("mix", 100.0): (88.13, 76.75),
}
REFERENCE_FULL = ("mix", 100.0)



def _condition(r: RunResult) -> tuple:
    """What separates one Table 1 from another: the locale (or source -> target pair and target speech)."""
    return (r.run.source_locale or "", r.run.locale, r.run.target_speech if r.run.target_speech is not None else -1)


def _condition_title(key: tuple) -> str:
    source, target, tspeech = key
    if source:
        return f"{source} speech+text, {target} text, {tspeech} {target} speech examples"
    return target


def table1(cells: list[Cell], reference_scheme: str) -> list[str]:
    """Markdown lines of Table 1 for one condition."""
    full = reference_cell(cells, reference_scheme)
    lines = [
        "| Scheme | Speech | Seeds | Intent acc. % [95 % CI] | Entity F1 % [95 % CI] | SLU-F1 % [95 % CI] "
        "| Share of 100 % SLU-F1 | Parse failures (all seeds) | Train time (mean) |",
        "|---|---:|---|---|---|---|---:|---:|---:|",
    ]
    for c in cells:
        m, sd = c.mean, c.sd
        lines.append(
            f"| {ROW_LABELS.get(c.scheme, c.scheme)} | {c.fraction:g} % | {len(c.seeds)} "
            f"| {fmt(m['intent_acc'], m['intent_acc_lo'], m['intent_acc_hi'], sd['intent_acc'])} "
            f"| {fmt(m['entity_f1'], m['entity_f1_lo'], m['entity_f1_hi'], sd['entity_f1'])} "
            f"| {fmt(m['slu_f1'], m['slu_f1_lo'], m['slu_f1_hi'], sd['slu_f1'])} "
            f"| {share(m['slu_f1'], full.mean['slu_f1'] if full else None)} "
            f"| {'–' if c.parse_failures is None else c.parse_failures} "
            f"| {'–' if c.train_seconds is None else f'{c.train_seconds:.0f} s'} |"
        )
    if full is not None:
        lines.append("")
        lines.append(f"Share of 100 %: SLU-F1 divided by that of {ROW_LABELS.get(full.scheme, full.scheme)} at 100 % speech.")
    return lines


# --- curriculum vs mixing -------------------------------------------------------------------------------------


def _p_value(result: dict, names: tuple[str, ...]) -> float | None:
    for name in names:
        value = result.get(name)
        if isinstance(value, dict):
            value = value.get("p_value", value.get("p"))
        if isinstance(value, (int, float)):
            return float(value)
    return None


Comparator = Callable[[RunResult, RunResult, str], dict | None]


def bootstrap_compare(a: RunResult, b: RunResult, eval_name: str) -> dict | None:
    """Paired bootstrap on one test set: is run `a` better than run `b`? One-sided p-values
    (slufit.scoring.paired_bootstrap); None when the prediction files or the gold data are not here."""
    pred_a = a.run_dir / "eval" / eval_name / "predictions.jsonl"
    pred_b = b.run_dir / "eval" / eval_name / "predictions.jsonl"
    if not (pred_a.is_file() and pred_b.is_file()):
        return None
    preds_a, preds_b = load_predictions(pred_a), load_predictions(pred_b)
    examples = gold_examples(a.run_dir, set(preds_a) | set(preds_b), a.run.locale)
    if not examples:
        return None
    from slufit.scoring import paired_bootstrap

    result = paired_bootstrap(examples, preds_a, preds_b)
    return {"p_intent": _p_value(result, ("intent_accuracy", "intent_acc", "intent")),
            "p_slu_f1": _p_value(result, ("slu_f1",))}


def curriculum_vs_mix(results: list[RunResult], eval_name: str | None, compare: Comparator = bootstrap_compare) -> list[str]:
    """A table: at each fraction and seed, curriculum minus mixing, with one-sided paired-bootstrap
    p-values for "curriculum is better"."""
    by_key = {(_condition(r), r.run.scheme, r.run.fraction, r.run.seed): r for r in results}
    lines = ["| Condition | Speech | Seed | Δ intent acc. (pts) | p | Δ SLU-F1 (pts) | p | Curriculum better? |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    count = 0
    for (cond, scheme, fraction, seed), cur in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3])):
        mix = by_key.get((cond, "mix", fraction, seed))
        if scheme != "curriculum" or mix is None or eval_name is None:
            continue
        sc, sm = cur.main_scores(eval_name), mix.main_scores(eval_name)
        if sc is None or sm is None or sc.slu_f1 is None or sm.slu_f1 is None:
            continue
        try:
            test = compare(cur, mix, eval_name) or {}
        except (SlufitError, OSError, ValueError, ImportError) as err:
            test = {"error": str(err)}
        d_int = None if sc.intent_acc is None or sm.intent_acc is None else sc.intent_acc - sm.intent_acc
        d_slu = sc.slu_f1 - sm.slu_f1
        p_int, p_slu = test.get("p_intent"), test.get("p_slu_f1")
        if p_slu is None:
            verdict = "not tested: " + test.get("error", "prediction files or gold data not found")
        elif p_slu < 0.05:
            verdict = "yes (p < 0.05)"
        else:
            verdict = "no significant gain"
        lines.append(f"| {_condition_title(cond)} | {fraction:g} % | {seed} | {_signed(d_int)} | {_p(p_int)} "
                     f"| {_signed(d_slu)} | {_p(p_slu)} | {verdict} |")
        count += 1
    return lines if count else []


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


# --- the reference study ---------------------------------------------------------------------------------------


def reference_section(cells: list[Cell], reference_scheme: str, interval: ShareInterval | None = None) -> list[str]:
    """The study's SLURP figures beside ours, both as raw numbers and as shares of their own 100 % figure,
    and the gap between the two shares: where it is near 0 the embedded model reproduces the study's shape."""
    ours = {(c.scheme, c.fraction): c for c in cells}
    full = reference_cell(cells, reference_scheme)
    ref_int, ref_slu = REFERENCE_STUDY[REFERENCE_FULL]
    lines = [
        "| Row | Study intent acc. | Study SLU-F1 | Study share of 100 % (intent / SLU-F1) "
        "| Ours intent acc. | Ours SLU-F1 | Our share of 100 % (intent / SLU-F1) | Share gap, SLU-F1 (pts) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (scheme, fraction), (s_int, s_slu) in REFERENCE_STUDY.items():
        c = ours.get((scheme, fraction))
        o_int = c.mean["intent_acc"] if c else None
        o_slu = c.mean["slu_f1"] if c else None
        our_share, gap = "–", "–"
        if full is not None:
            our_share = f"{share(o_int, full.mean['intent_acc'])} / {share(o_slu, full.mean['slu_f1'])}"
            if o_slu is not None and full.mean["slu_f1"]:
                gap = f"{100 * o_slu / full.mean['slu_f1'] - 100 * s_slu / ref_slu:+.1f}"
        lines.append(
            f"| {ROW_LABELS[scheme]} {fraction:g} % | {s_int:.2f} | {s_slu:.2f} "
            f"| {share(s_int, ref_int)} / {share(s_slu, ref_slu)} "
            f"| {fmt(o_int)} | {fmt(o_slu)} | {our_share} | {gap} |"
        )
    lines += ["", "Share gap: our share of the 100 % SLU-F1 minus the study's; negative where limited speech "
              "costs the embedded model more than it cost Qwen2-Audio-7B."]
    verdict = regime_verdict(cells, reference_scheme, interval)
    return lines + (["", verdict] if verdict else [])


# --- the whole report ------------------------------------------------------------------------------------------


def _code_versions(results: list[RunResult]) -> list[str]:
    versions = set()
    for r in results:
        path = r.run_dir / "version.json"
        if path.is_file():
            v = read_json(path)
            versions.add(f"slufit {v.get('slufit')}, git {v.get('git') or 'unknown'}, python {v.get('python')}, "
                         f"torch {v.get('torch')}, transformers {v.get('transformers')}")
    return sorted(versions)


def _grid_config(grid_dir: Path) -> dict[str, Any] | None:
    path = grid_dir / GRID_FILE
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _curve_points(cells: list[Cell]) -> dict[str, list[tuple]]:
    points: dict[str, list[tuple]] = defaultdict(list)
    for c in cells:
        if c.mean["slu_f1"] is not None:
            points[c.scheme].append((c.fraction, c.mean["slu_f1"], c.mean["slu_f1_lo"], c.mean["slu_f1_hi"]))
    return dict(points)


def _locale_section(results: list[RunResult], grid_dir: Path, eval_name: str | None) -> list[str]:
    """Cross-lingual: each training condition scored on each locale of the eval set, as bars and a table.

    Groups are the locales of `eval_name` (metrics.json's per_locale); without per-locale metrics,
    every eval set is its own group."""
    locales = sorted({loc for r in results for (name, loc) in r.locale_evals if name == eval_name})
    groups = [(eval_name, loc) for loc in locales] or [(name, None) for name in sorted({n for r in results for n in r.evals})]
    conditions: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        label = f"{ROW_LABELS.get(r.run.scheme, r.run.scheme)} {r.run.fraction:g} %, {r.run.target_speech} {r.run.locale} speech"
        conditions[label].append(r)
    names = [loc or name for name, loc in groups]
    bars: dict[str, list[tuple]] = {}
    lines = ["| Condition | Seeds | " + " | ".join(f"{n}: intent acc. % / SLU-F1 % [95 % CI]" for n in names) + " |",
             "|---|---|" + "---|" * len(groups)]
    for label, group in conditions.items():
        cells, values = [], []
        for name, loc in groups:
            scores = [s for r in group if (s := r.scores(name, loc)) is not None]
            slu = tuple(mean_of([getattr(s, k) for s in scores]) for k in ("slu_f1", "slu_f1_lo", "slu_f1_hi"))
            values.append(slu)
            cells.append(f"{fmt(mean_of([s.intent_acc for s in scores]))} / {fmt(*slu)}")
        bars[label] = values
        lines.append(f"| {label} | {len(group)} | " + " | ".join(cells) + " |")
    xlabel = f"evaluated locale ({eval_name})" if locales else "eval set"
    plots.plot_locale_bars(names, bars, grid_dir / LOCALE_PNG, "Cross-lingual: SLU-F1 by evaluated locale", xlabel=xlabel)
    return [f"![SLU-F1 by locale]({LOCALE_PNG})", "", *lines]


def _unfinished_lines(grid_dir: Path, config: dict[str, Any]) -> list[str]:
    """The grid's runs that have not finished (still training, interrupted, not started): not in the tables."""
    from slufit.grid.lock import unfinished_runs
    from slufit.grid.spec import grid_from_dict

    try:
        expected = [r.name for r in grid_from_dict(config).runs()] if config else []
    except SlufitError:
        expected = []
    unfinished = unfinished_runs(grid_dir, expected)
    if not unfinished:
        return []
    return [f"**{len(unfinished)} unfinished run(s), not in the tables below** (`slufit grid plan` shows them too):", "",
            *[f"- `{name}`: {state}" for name, state in unfinished], ""]


def build_report(grid_dir: str | os.PathLike, eval_name: str | None = None, reference_scheme: str | None = None,
                 compare: Comparator = bootstrap_compare) -> Path:
    """Gather the finished runs under `grid_dir`; write results.csv, report.md and the plots. Returns report.md."""
    grid_dir = Path(grid_dir)
    results = gather(grid_dir)
    if not results:
        raise SlufitError(f"{grid_dir}: no finished run folders (summary.json with \"done\": true) to report")
    config = _grid_config(grid_dir) or {}
    report_cfg = config.get("report") or {}
    eval_name = primary_eval(results, eval_name or report_cfg.get("eval"))
    reference_scheme = reference_scheme or report_cfg.get("reference") or "mix"
    write_csv(grid_dir / "results.csv", rows(results, eval_name))

    title = config.get("name") or grid_dir.name
    lines = [f"# Grid report: {title}", "",
             f"{len(results)} finished runs in `{grid_dir}`; scores on the `{eval_name}` eval set, in percent, "
             "with 95 % bootstrap confidence intervals. Every number here is in `results.csv` and was read "
             "from the run folders' `summary.json`.", ""]
    lines += _unfinished_lines(grid_dir, config)
    by_condition: dict[tuple, list[RunResult]] = defaultdict(list)
    for r in results:
        by_condition[_condition(r)].append(r)
    all_cells: dict[tuple, list[Cell]] = {k: make_cells(v, eval_name) for k, v in sorted(by_condition.items())}

    lines += ["## Results by speech fraction and scheme", ""]
    for key, cells in all_cells.items():
        if len(all_cells) > 1:
            lines += [f"### {_condition_title(key)}", ""]
        # A cross-lingual condition has no full-speech run of its own to be a share of.
        lines += table1(cells, None if key[0] else reference_scheme) + [""]
    lines += ["With several seeds a cell shows the mean, `±` the standard deviation across seeds, and the mean "
              "of the per-run 95 % intervals.", ""]

    # The curve: the first condition with several fractions, monolingual first (a cross-lingual grid at one
    # fraction has no curve to draw; its locale bars say more).
    curved = [k for k in sorted(all_cells, key=lambda k: bool(k[0])) if len({c.fraction for c in all_cells[k]}) > 1]
    if curved:
        key = curved[0]
        plots.plot_fraction_curve(_curve_points(all_cells[key]), grid_dir / CURVE_PNG,
                                  f"SLU-F1 vs speech fraction ({_condition_title(key)}, {eval_name})")
        lines += [f"![SLU-F1 against speech fraction]({CURVE_PNG})", ""]

    comparison = curriculum_vs_mix(results, eval_name, compare)
    if comparison:
        lines += ["## Does curriculum beat direct mixing?", "",
                  "Curriculum minus direct mixing at each speech fraction, same seed and test set. p is the one-sided "
                  "paired-bootstrap p-value (1,000 resamples of test utterances, on the saved prediction files) "
                  "that curriculum is not better: the share of resamples in which it does not beat mixing.", "",
                  *comparison, ""]

    if any(r.run.crosslingual for r in results):
        lines += ["## Cross-lingual: per-locale results", "",
                  *_locale_section([r for r in results if r.run.crosslingual], grid_dir, eval_name), ""]

    mono = [k for k in all_cells if not k[0]]
    if mono:
        key = mono[0]
        lines += ["## Next to the reference study", "",
                  "The reference study (arXiv 2509.15389) fine-tuned Qwen2-Audio-7B-Instruct on SLURP and reports "
                  "SLURP test intent accuracy and SLU-F1. Absolute numbers are not comparable across models and "
                  "data, so each row is also shown as a share of its own 100 %-speech figure: where the shares "
                  f"agree, the embedded model reproduces the study's shape. Ours: {_condition_title(key)}, "
                  f"`{eval_name}`.", "",
                  *reference_section(all_cells[key], reference_scheme, share_bootstrap(by_condition[key], eval_name)),
                  ""]

    lines += ["## Reproduction", ""]
    seeds = sorted({r.run.seed for r in results})
    lines += [f"- Seeds: {len(seeds)} ({', '.join(map(str, seeds))})"]
    versions = _code_versions(results)
    lines += [f"- Code: {v}" for v in versions] or ["- Code: version.json not found in the run folders"]
    lines += [f"- Runs: {', '.join(sorted(r.run.name for r in results))}",
              f"- Rebuild this report: `slufit grid report {grid_dir}`"]
    if config:
        lines += [f"- Rerun the grid: `slufit grid --config {grid_dir / GRID_FILE}`", "", "Grid config:", "",
                  "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```"]
    report = grid_dir / "report.md"
    with atomic_open(report) as handle:
        handle.write("\n".join(lines) + "\n")
    return report
