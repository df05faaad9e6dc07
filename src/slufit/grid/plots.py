"""The report's plots (matplotlib, Agg backend, PNG files written atomically).

- `plot_fraction_curve`: SLU-F1 against speech fraction, one line per scheme,
  95 % CI bands; the x axis is symmetric-log, because the study's fractions
  (0, 2, 5, 10, 25, 100 %) crowd near zero on a linear axis.
- `plot_locale_bars`: cross-lingual grids, one group of bars per evaluated
  locale, one bar per training condition, 95 % CI error bars.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from slufit.files import atomic_open  # noqa: E402

SCHEME_LABELS = {"text_only": "text-only", "mix": "direct mixing", "curriculum": "curriculum"}
SCHEME_COLORS = {"text_only": "#7f7f7f", "mix": "#1f77b4", "curriculum": "#d62728"}


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_fraction_curve(points: dict[str, list[tuple[float, float, float | None, float | None]]],
                        path: str | os.PathLike, title: str, metric: str = "SLU-F1",
                     xlabel: str = "evaluated locale") -> Path:
    """`points[scheme]` = [(fraction %, value %, ci_lo %, ci_hi %), ...]. Text-only (0 % only) is also
    drawn as a dashed horizontal line, so every speech scheme can be read against it."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    fractions = sorted({f for pts in points.values() for f, *_ in pts})
    right = max(fractions + [1.0])
    for scheme, pts in points.items():
        pts = sorted(pts)
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        color = SCHEME_COLORS.get(scheme)
        label = SCHEME_LABELS.get(scheme, scheme)
        if all(x == 0 for x in xs):
            ax.axhline(ys[0], color=color, linestyle="--", linewidth=1.2, label=f"{label} (0 % speech)")
            ax.plot(xs, ys, "o", color=color)
        else:
            ax.plot(xs, ys, "o-", color=color, label=label)
        lows = [p[2] for p in pts]
        highs = [p[3] for p in pts]
        if all(v is not None for v in lows + highs):
            if len(xs) > 1:
                ax.fill_between(xs, lows, highs, color=color, alpha=0.15, linewidth=0)
            else:
                ax.errorbar(xs, ys, yerr=[[ys[0] - lows[0]], [highs[0] - ys[0]]], fmt="none", color=color, capsize=3)
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_xticks(fractions)
    ax.set_xticklabels([f"{f:g}" for f in fractions])
    ax.set_xlim(-0.3, right * 1.15)
    ax.set_xlabel("speech fraction of training utterances (%, symmetric-log scale)")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_locale_bars(groups: Sequence[str], bars: dict[str, list[tuple[float | None, float | None, float | None]]],
                     path: str | os.PathLike, title: str, metric: str = "SLU-F1",
                     xlabel: str = "evaluated locale") -> Path:
    """`groups` are evaluated locales; `bars[condition]` = one (value, lo, hi) per group (None = not evaluated)."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(groups) * max(1, len(bars)) / 2 + 2), 4.2))
    width = 0.8 / max(1, len(bars))
    for i, (condition, values) in enumerate(bars.items()):
        xs, ys, errs = [], [], [[], []]
        for g, (value, lo, hi) in enumerate(values):
            if value is None:
                continue
            xs.append(g - 0.4 + width * (i + 0.5))
            ys.append(value)
            errs[0].append(0.0 if lo is None else value - lo)
            errs[1].append(0.0 if hi is None else hi - value)
        ax.bar(xs, ys, width=width, label=condition, yerr=errs, capsize=3)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)
