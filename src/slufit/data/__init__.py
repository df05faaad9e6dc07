"""Canonical SLU examples, dataset importers, audio loading and speech budgets."""

from slufit.data.example import Entity, Example, Recording, read_examples, write_examples

__all__ = ["Entity", "Example", "Recording", "read_examples", "write_examples"]
