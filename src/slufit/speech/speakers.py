"""Synthetic speakers: an espeak-ng voice variant with a pitch, a pitch range and a speaking rate.

Each locale has a fixed pool of 12 training and 4 test speakers. The pools use
different voice variants (train: m1-m5, f1-f3; test: m6, m7, f4, f5), so test
speakers are never heard in training. An example's speaker is chosen from a
hash of its id, so a subset (a speech budget) gets the same voices as the
full set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from slufit.errors import SlufitError

# Locale -> espeak-ng voice. A literal dict: the locales that can be synthesized.
VOICES: dict[str, str] = {
    "en-US": "en-us", "fr-FR": "fr", "de-DE": "de", "es-ES": "es", "it-IT": "it", "pt-PT": "pt",
    "nl-NL": "nl", "pl-PL": "pl", "ru-RU": "ru", "tr-TR": "tr", "hu-HU": "hu", "ko-KR": "ko",
    "vi-VN": "vi", "ar-SA": "ar",
}
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3")
TEST_VARIANTS = ("m6", "m7", "f4", "f5")
# (rate words/min, pitch 0-100, pitch range 0-100), cycled over a pool's variants.
_PROSODY = ((175, 50, 50), (160, 35, 30), (190, 65, 70), (150, 45, 80), (185, 30, 40), (165, 60, 60))
POOL_SIZES = {"train": 12, "test": 4}


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str  # espeak-ng voice name, e.g. "en-us+f3"
    rate: int
    pitch: int
    pitch_range: int


def speakers(locale: str, split: str = "train") -> list[Speaker]:
    """The fixed speaker pool of `locale` for `split` ("train" or "test")."""
    if locale not in VOICES:
        raise SlufitError(f"no espeak-ng voice for locale {locale!r}; known: {', '.join(VOICES)}")
    if split not in POOL_SIZES:
        raise SlufitError(f"speakers must be 'train' or 'test', got {split!r}")
    variants = TRAIN_VARIANTS if split == "train" else TEST_VARIANTS
    pool = []
    for i in range(POOL_SIZES[split]):
        variant = variants[i % len(variants)]
        # Shift the prosody by the variant's round so a variant reused in the pool sounds different.
        rate, pitch, pitch_range = _PROSODY[(i + i // len(variants)) % len(_PROSODY)]
        pool.append(Speaker(f"espeak-{locale}-{split}{i:02d}", f"{VOICES[locale]}+{variant}", rate, pitch,
                            pitch_range))
    return pool


def speaker_for(example_id: str, pool: list[Speaker]) -> Speaker:
    """A stable choice of speaker for an example (independent of which other examples are synthesized)."""
    digest = hashlib.sha1(example_id.encode("utf-8")).digest()
    return pool[int.from_bytes(digest[:4], "big") % len(pool)]
