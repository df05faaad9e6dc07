"""Reading audio for the models: float32 mono 16 kHz arrays, with readable errors.

Every model input goes through `load_audio`, so a wrong sampling rate or a stereo
file can never reach a processor silently misread (DESIGN.md, "Known traps").
soundfile reads, soxr resamples; torchaudio is deliberately not used.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from slufit.errors import DataError
from slufit.files import atomic_open

SAMPLE_RATE = 16_000
# Peak below this (about -80 dBFS) counts as silence: such a file carries no speech,
# and feeding it to a model would only teach it to hallucinate.
SILENCE_PEAK = 1e-4


class AudioError(DataError):
    """An audio file that cannot be used: unreadable, empty or silent. The message names the file."""


def to_model_audio(samples: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
    """Mix `samples` (frames x channels, or frames) to mono float32 at 16 kHz; reject empty or silent audio."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise AudioError(f"{name}: audio is silent (peak below {SILENCE_PEAK:g})")
    if sample_rate != SAMPLE_RATE:
        samples = soxr.resample(samples, sample_rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def decode_audio(data: bytes, name: str) -> np.ndarray:
    """Decode an in-memory audio file (WAV, FLAC, OGG...) named `name` in errors."""
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{name}: cannot decode audio ({err})") from None
    return to_model_audio(samples, rate, name)


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Read an audio file as a float32 mono 16 kHz array; raises AudioError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{path}: cannot read audio ({err})") from None
    return to_model_audio(samples, rate, str(path))


def load_audios(paths: list[str | os.PathLike]) -> tuple[list[np.ndarray | None], list[AudioError | None]]:
    """Load a batch; a bad file gives None and its error at its index, and costs nothing else."""
    arrays: list[np.ndarray | None] = []
    errors: list[AudioError | None] = []
    for path in paths:
        try:
            arrays.append(load_audio(path))
            errors.append(None)
        except AudioError as err:
            arrays.append(None)
            errors.append(err)
    return arrays, errors


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Atomically write a mono FLAC or WAV file (format from the suffix)."""
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        sf.write(handle, samples, sample_rate, format=path.suffix.lstrip(".").upper() or "FLAC")


def duration_seconds(path: str | os.PathLike) -> float | None:
    """Length of an audio file from its header, or None when it is missing or unreadable."""
    try:
        return float(sf.info(str(path)).duration)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
