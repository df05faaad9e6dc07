"""Flite (CMU), a second speech synthesizer, used as a *held-out engine*: speech the bridge never hears.

The embedded default's CTC bridge learns from espeak-ng voices only, so its errors on espeak-ng test
speakers understate its errors on speech from anything else. Flite is a different synthesizer (unit
selection and statistical parametric voices recorded from people: `slt`, `rms`, `awb`, and the diphone
voice `kal16`), with its own text front end, so it measures how far the bridge's hearing reaches
(docs/tiny.md, "Held-out engine").

No Flite ships on PyPI (see docs/corpus_speech.md for what was looked for), so this calls the `flite`
program of the operating system: `apt-get install flite` (Debian/Ubuntu; Flite's licence is BSD-like,
see /usr/share/doc/flite/copyright). It is deterministic: the same text and voice give the same bytes.
English only. 16 kHz mono float32, like slufit.speech.espeak.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from slufit.errors import SlufitError
from slufit.speech.program import synthesize_with, voice_name

PREFIX = "flite:"  # a Speaker.voice of this engine: "flite:slt"
VOICES = ("slt", "rms", "awb", "kal16")


def program() -> str:
    path = shutil.which("flite")
    if path is None:
        raise SlufitError("the held-out engine needs the `flite` program: apt-get install flite "
                          "(no Flite build ships on PyPI)")
    return path


def version() -> str:
    """Flite's version line, for the audio cache's key."""
    out = subprocess.run([program(), "--version"], capture_output=True, text=True, check=False)
    return " ".join((out.stdout or out.stderr).split()[:2]) or "flite"


def synthesize(text: str, voice: str, rate: int) -> np.ndarray:
    """16 kHz mono float32 audio of `text` by Flite `voice` ("flite:slt" or "slt"), spoken at about `rate`
    words a minute (175 is the voice's own pace: the duration is stretched by 175 / rate)."""
    name = voice_name("Flite", voice, PREFIX, VOICES, text)
    return synthesize_with("Flite", name, text, lambda folder: [
        program(), "-voice", name, "--setf", f"duration_stretch={175 / rate:.3f}", "-t", text,
        "-o", str(folder / "out.wav")])
