"""What the engines that run an operating-system program (Flite, Festival) share: the request's checks, and
running the program into a temporary WAV file that is read back as 16 kHz mono float32 (slufit.data.audio)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from slufit.data.audio import AudioError, load_audio
from slufit.errors import SlufitError


def voice_name(engine: str, voice: str, prefix: str, voices: tuple[str, ...], text: str) -> str:
    """The engine's own name of `voice` ("flite:slt" or "slt" -> "slt"); an unknown voice or empty text is an error."""
    name = voice.removeprefix(prefix)
    if name not in voices:
        raise SlufitError(f"unknown {engine} voice {name!r}; known: {', '.join(voices)}")
    if not text.strip():
        raise SlufitError("cannot synthesize empty text")
    return name


def synthesize_with(engine: str, name: str, text: str, command: Callable[[Path], list[str]],
                    error_marker: str | None = None, hint: str = "") -> np.ndarray:
    """Run `command(folder)` (it writes `folder/out.wav`; the folder is temporary) and read its audio.

    A non-zero exit, no output file, or `error_marker` in its stderr (a program that exits 0 on errors) fails
    with the engine, the text, the voice and the end of stderr; so does empty or silent audio."""
    with tempfile.TemporaryDirectory(prefix=f"slufit-{engine.lower()}-") as tmp:
        wav = Path(tmp) / "out.wav"
        done = subprocess.run(command(Path(tmp)), capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wav.is_file() or (error_marker and error_marker in done.stderr):
            raise SlufitError(f"{engine.lower()} failed on {text!r} with voice {name} "
                              f"({done.stderr.strip()[-300:]}){hint}")
        try:
            return load_audio(wav)  # mono, 16 kHz, float32; empty or silent output is an error
        except AudioError as err:
            raise SlufitError(f"{engine.lower()} voice {name} gave no usable audio for {text!r}: {err}") from None
