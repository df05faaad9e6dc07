"""Shared test fixtures."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_slurp() -> Path:
    """../shared/data/slurp, or skip when this checkout has no shared folder beside it."""
    path = SHARED_DATA / "slurp"
    if not (path / "devel.jsonl").is_file():
        pytest.skip(f"shared SLURP data not found at {path}")
    return path
