"""Festival (University of Edinburgh), a third speech synthesizer: a second engine for the bridge's unlabelled pool.

The bridge's CTC head hears espeak-ng voices only, and a different engine costs it far more than a new
espeak-ng speaker does (docs/tiny.md, "A held-out engine"). Festival's English voices give its
pretraining pool speech from another engine: two diphone voices (`kal_diphone`, `ked_diphone`) and
one HTS statistical voice (`cmu_us_slt_arctic_hts`). Flite stays the held-out engine; since Flite's
`kal16` and `slt` come from the same recordings as Festival's `kal` and `slt`, a bridge that heard
Festival is measured on Flite's other two voices only (the `flite-unshared` pool).

No Festival ships on PyPI, so this calls the `text2wave` program of the operating system:
`apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts` (Debian/Ubuntu; Festival
and these voices are under free licences, see /usr/share/doc/festival*/copyright). Deterministic: the same
text, voice and pace give the same bytes. English only. 16 kHz mono float32, like slufit.speech.espeak.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from slufit.errors import SlufitError
from slufit.speech.program import synthesize_with, voice_name

PREFIX = "festival:"  # a Speaker.voice of this engine: "festival:ked_diphone"
VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
INSTALL = "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"


def program() -> str:
    path = shutil.which("text2wave")
    if path is None:
        raise SlufitError(f"Festival's voices need its `text2wave` program: {INSTALL} (no Festival ships on PyPI)")
    return path


def version() -> str:
    """Festival's version line, for the audio cache's key."""
    festival = shutil.which("festival")
    out = subprocess.run([festival or program(), "--version"], capture_output=True, text=True, check=False)
    return " ".join((out.stdout or out.stderr).split()[:4]) or "festival"


def synthesize(text: str, voice: str, rate: int) -> np.ndarray:
    """16 kHz mono float32 audio of `text` by Festival `voice` ("festival:ked_diphone" or "ked_diphone"), at about
    `rate` words a minute (175 is the voice's own pace: durations are stretched by 175 / rate)."""
    name = voice_name("Festival", voice, PREFIX, VOICES, text)

    def command(folder: Path) -> list[str]:
        source = folder / "in.txt"
        source.write_text(text, encoding="utf-8")  # a file, not the command line: any text stays text
        return [program(), "-eval", f"(voice_{name})", "-eval", f"(Parameter.set 'Duration_Stretch {175 / rate:.3f})",
                str(source), "-o", str(folder / "out.wav")]

    # A missing voice exits 0 with "SIOD ERROR" in stderr.
    return synthesize_with("Festival", name, text, command, error_marker="SIOD ERROR",
                           hint=f"; are its voices installed? {INSTALL}")
