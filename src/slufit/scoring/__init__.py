"""Scoring: SLURP-exact metrics, bootstrap CIs, paired tests, MASSIVE-style metrics, and
tolerant parsing of generated predictions. See docs/scoring.md."""

from slufit.scoring.score import evaluate, paired_bootstrap

__all__ = ["evaluate", "paired_bootstrap"]
