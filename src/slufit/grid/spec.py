"""The grid config: which runs a grid holds, and what each one is called.

A grid is the product of schemes x speech fractions x seeds x locales (or, for
a cross-lingual grid, source/target locale pairs x target-speech counts). Each
point becomes one `RunSpec`, trained into its own run folder named after its
coordinates (`mix-p05-s0-en-US`), so folders from other machines can be
copied in and gathered by name.

    name: demo-mono                      # shown in the report
    out: runs/demo/mono                  # run folders go here
    train:                               # what every run shares (slufit.train.config fields)
      config: configs/tiny/finetune.yaml # optional base train config
      overrides: {train.lr: 1.0e-4}      # optional overrides applied to every run (nested or dotted keys)
    data:                                # canonical JSONL templates; {locale} is filled per run
      train: runs/demo/data/{locale}/train.jsonl
      test: runs/demo/data/{locale}/test.jsonl
    schemes: [text_only, mix, curriculum]
    fractions: [0, 2, 5, 10, 100]        # percent of training utterances with speech
    seeds: [0]
    extra_seeds:                         # optional: more seeds for the cells a verdict rests on
      seeds: [1, 2]
      cells: {text_only: [0], mix: [2, 5, 100]}   # scheme -> fractions
    locales: [en-US]
    report: {eval: test, reference: mix}

Relative paths are relative to the working directory, as in train configs.
`text_only` has no speech, so it runs once per seed and locale, at 0 %; the
speech schemes skip 0 %. A cross-lingual grid replaces `locales` with
`crosslingual: {pairs: [{source: fr-FR, target: en-US}], target_speech: [0, 16]}`:
source-language speech (at each fraction) and text, target-language text, and
`target_speech` target-language speech examples.

`extra_seeds` runs the listed cells (scheme and fraction) with more seeds while the rest keep
`seeds`: a grid's verdicts rest on a few cells (text-only and mixing at 2, 5 and 100 % for the
study's regime), and one seed cannot carry them (2-4 SLU-F1 points between seeds on the demo),
but tripling every run is rarely affordable. Those runs come after all the others, so adding
extra seeds to a grid leaves the index of every existing run as it was.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slufit.data.example import LOCALE_PATTERN
from slufit.errors import SlufitError

SCHEMES = ("text_only", "mix", "curriculum")
# The file each run folder gets, so `slufit grid report` can place it without the grid config.
RUN_FILE = "grid_run.json"
# The grid config as run (absolute paths), copied into the grid folder: for the report and for reruns.
GRID_FILE = "grid.yaml"


@dataclass(frozen=True)
class RunSpec:
    """One point of a grid: a scheme, a speech fraction, a seed and the locales it trains on."""

    scheme: str
    fraction: float  # percent of training utterances with speech (source language when cross-lingual)
    seed: int
    locale: str  # the (target) locale: the language the model is evaluated on
    source_locale: str | None = None  # cross-lingual only: the language whose speech is plentiful
    target_speech: int | None = None  # cross-lingual only: target-language speech examples

    @property
    def crosslingual(self) -> bool:
        return self.source_locale is not None

    @property
    def name(self) -> str:
        """Readable folder name: `mix-p05-s0-en-US`, `xl-mix-p100-t16-s0-fr-FR-en-US`."""
        pct = format_fraction(self.fraction)
        if self.crosslingual:
            return f"xl-{self.scheme}-p{pct}-t{self.target_speech}-s{self.seed}-{self.source_locale}-{self.locale}"
        return f"{self.scheme}-p{pct}-s{self.seed}-{self.locale}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "scheme": self.scheme, "fraction": self.fraction, "seed": self.seed,
            "locale": self.locale, "source_locale": self.source_locale, "target_speech": self.target_speech,
        }

    @staticmethod
    def from_dict(obj: dict[str, Any]) -> "RunSpec":
        return RunSpec(
            scheme=str(obj["scheme"]), fraction=float(obj["fraction"]), seed=int(obj["seed"]),
            locale=str(obj["locale"]), source_locale=obj.get("source_locale"),
            target_speech=None if obj.get("target_speech") is None else int(obj["target_speech"]),
        )


def format_fraction(fraction: float) -> str:
    """2 -> '02', 100 -> '100', 0.5 -> '0.5': sorts sensibly and reads as a percentage."""
    if float(fraction).is_integer():
        return f"{int(fraction):02d}"
    return f"{fraction:g}"


@dataclass
class GridSpec:
    """A grid config as loaded from YAML; `runs()` expands it."""

    name: str
    out: Path
    schemes: list[str]
    fractions: list[float]
    seeds: list[int]
    locales: list[str] = field(default_factory=list)
    # Cross-lingual: [{"source": "fr-FR", "target": "en-US"}] and target-language speech counts.
    pairs: list[dict[str, str]] = field(default_factory=list)
    target_speech: list[int] = field(default_factory=lambda: [0])
    # Base train config file (absolute, or None) and overrides applied to every run.
    train_config: Path | None = None
    train_overrides: dict[str, Any] = field(default_factory=dict)
    # File templates with {locale}: train, test, and optional others the train config knows.
    data: dict[str, str] = field(default_factory=dict)
    # Report: which eval set the tables use, and which scheme at 100 % is "full speech".
    report_eval: str | None = None
    reference_scheme: str = "mix"
    source_file: Path | None = None
    # More seeds for some cells: (seeds, {scheme: [fractions]}).
    extra_seeds: list[int] = field(default_factory=list)
    extra_cells: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"{self.source_file}: " if self.source_file else ""
        unknown = sorted(set(self.schemes) - set(SCHEMES))
        if unknown:
            raise SlufitError(f"{where}unknown scheme(s) {', '.join(unknown)}; known: {', '.join(SCHEMES)}")
        if not self.schemes or not self.seeds:
            raise SlufitError(f"{where}a grid needs at least one scheme and one seed")
        for f in self.fractions:
            if not 0 <= f <= 100:
                raise SlufitError(f"{where}fractions are percentages in [0, 100], got {f}")
        if bool(self.locales) == bool(self.pairs):
            raise SlufitError(f"{where}give either 'locales' or 'crosslingual.pairs', exactly one")
        for loc in self.locales + [p[k] for p in self.pairs for k in ("source", "target")]:
            if not LOCALE_PATTERN.match(loc):
                raise SlufitError(f"{where}locale must look like 'en-US', got {loc!r}")
        if any(n < 0 for n in self.target_speech):
            raise SlufitError(f"{where}crosslingual.target_speech counts must be >= 0")
        unknown = sorted(set(self.extra_cells) - set(self.schemes))
        if unknown:
            raise SlufitError(f"{where}extra_seeds.cells: scheme(s) {', '.join(unknown)} not in this grid's schemes")
        for scheme, fractions in self.extra_cells.items():
            allowed = [0.0] if scheme == "text_only" else self.fractions
            missing = [f for f in fractions if float(f) not in allowed]
            if missing:
                raise SlufitError(f"{where}extra_seeds.cells.{scheme}: fraction(s) {', '.join(f'{f:g}' for f in missing)} "
                                  f"not in this grid (text_only runs at 0; others at: "
                                  f"{', '.join(f'{f:g}' for f in self.fractions)})")
        if self.extra_seeds and not self.extra_cells:
            raise SlufitError(f"{where}extra_seeds needs 'cells' (scheme -> fractions) as well as 'seeds'")

    @property
    def crosslingual(self) -> bool:
        return bool(self.pairs)

    def runs(self) -> list[RunSpec]:
        """Every run of the grid, in a stable order (text-only first: it is the baseline)."""
        out: list[RunSpec] = []
        if self.crosslingual:
            points = [(p["source"], p["target"], t) for p in self.pairs for t in self.target_speech]
        else:
            points = [(None, loc, None) for loc in self.locales]
        for (source, target, tspeech), scheme, seed in itertools.product(points, self.schemes, self.seeds):
            fractions = [0.0] if scheme == "text_only" else [f for f in self.fractions if f > 0]
            for fraction in fractions:
                out.append(RunSpec(scheme, float(fraction), int(seed), target, source, tspeech))
        # The extra seeds last: existing runs keep their index (a Slurm array already planned stays valid).
        for (source, target, tspeech), seed, scheme in itertools.product(points, self.extra_seeds, self.schemes):
            for fraction in self.extra_cells.get(scheme, []):
                out.append(RunSpec(scheme, float(fraction), int(seed), target, source, tspeech))
        seen: set[str] = set()
        return [r for r in out if not (r.name in seen or seen.add(r.name))]

    def data_file(self, key: str, locale: str) -> Path | None:
        """The `data[key]` template filled for `locale`; None if absent."""
        template = self.data.get(key)
        return None if template is None else Path(template.format(locale=locale))

    def to_dict(self) -> dict[str, Any]:
        """The grid as YAML-able data (for the report's reproduction section)."""
        out: dict[str, Any] = {"name": self.name, "out": str(self.out), "schemes": self.schemes,
                               "fractions": self.fractions, "seeds": self.seeds}
        if self.crosslingual:
            out["crosslingual"] = {"pairs": self.pairs, "target_speech": self.target_speech}
        else:
            out["locales"] = self.locales
        out["train"] = {"config": None if self.train_config is None else str(self.train_config),
                        "overrides": self.train_overrides}
        out["data"] = self.data
        out["report"] = {"eval": self.report_eval, "reference": self.reference_scheme}
        if self.extra_seeds:
            out["extra_seeds"] = {"seeds": self.extra_seeds, "cells": self.extra_cells}
        return out


def load_grid(path: str | os.PathLike, out: str | os.PathLike | None = None) -> GridSpec:
    """Read and validate a grid YAML file; `out` replaces its output folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlufitError(f"{path}: no such grid config") from None
    except yaml.YAMLError as err:
        raise SlufitError(f"{path}: invalid YAML ({err})") from None
    return grid_from_dict(raw, source_file=path, out=out)


_KEYS = {"name", "out", "train", "data", "schemes", "fractions", "seeds", "extra_seeds", "locales", "crosslingual",
         "report"}


def grid_from_dict(raw: Any, source_file: Path | None = None, out: str | os.PathLike | None = None) -> GridSpec:
    where = f"{source_file}: " if source_file else ""
    if not isinstance(raw, dict):
        raise SlufitError(f"{where}a grid config is a mapping")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise SlufitError(f"{where}unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    train = raw.get("train") or {}
    cross = raw.get("crosslingual") or {}
    report = raw.get("report") or {}
    extra = raw.get("extra_seeds") or {}
    try:
        train_config = None if train.get("config") is None else Path(train["config"])
        out_dir = Path(out if out is not None else raw.get("out", f"runs/{raw.get('name', 'grid')}"))
        return GridSpec(
            name=str(raw.get("name", source_file.stem if source_file else "grid")),
            out=out_dir,
            schemes=[str(s) for s in _as_list(raw.get("schemes", list(SCHEMES)))],
            fractions=[float(f) for f in _as_list(raw.get("fractions", [0]))],
            seeds=[int(s) for s in _as_list(raw.get("seeds", [0]))],
            locales=[str(x) for x in _as_list(raw.get("locales", []))],
            pairs=[{"source": str(p["source"]), "target": str(p["target"])} for p in _as_list(cross.get("pairs", []))],
            target_speech=[int(n) for n in _as_list(cross.get("target_speech", [0]))],
            train_config=train_config,
            train_overrides=dict(train.get("overrides") or {}),
            data={str(k): str(v) for k, v in (raw.get("data") or {}).items()},
            report_eval=report.get("eval"),
            reference_scheme=str(report.get("reference", "mix")),
            source_file=source_file,
            extra_seeds=[int(s) for s in _as_list(extra.get("seeds", []))],
            extra_cells={str(k): [float(f) for f in _as_list(v)] for k, v in (extra.get("cells") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SlufitError(f"{where}malformed grid config ({type(err).__name__}: {err})") from None


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]
