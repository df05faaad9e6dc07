"""Synthetic speakers: an espeak-ng voice variant with a pitch, a pitch range and a speaking rate.

Each locale has a fixed pool of 12 training and 4 test speakers. The pools use
different voice variants (train: m1-m5, f1-f3; test: m6, m7, f4, f5), so test
speakers are never heard in training. A third pool, `unlabelled`, voices speech
that carries no labels (the bridge's CTC pretraining): the training variants
plus 67 more of espeak-ng's named variants, each at its own prosody, and never
a test variant, so unlabelled speech spends no labelled budget and still hears
no test speaker. An example's speaker is chosen from a hash of its id, so a
subset (a speech budget) gets the same voices as the full set.

A fourth pool, `flite` (English only), is test speech from another synthesizer,
Flite (slufit.speech.flite): a held-out *engine*, which nothing in slufit trains on.
Two more pools bring a third engine, Festival (slufit.speech.festival), into the
bridge's unlabelled speech: `festival` (its three English voices at five paces) and
`unlabelled+festival` (the unlabelled pool and those). Flite's `slt` and `kal16` are
recorded from the same people as two Festival voices, so a bridge that heard Festival
is measured on `flite-unshared` (Flite's `rms` and `awb`).
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
# espeak-ng's named variants that sound like a person (not whispered, croaked or robotic), none a test variant.
UNLABELLED_VARIANTS = TRAIN_VARIANTS + (
    "m8", "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo",
    "Jacky", "Lee", "Mario", "Michael", "Mike", "Mr serious", "Nguyen", "Reed", "RicishayMax", "Storm", "adam",
    "anika", "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward",
    "edward2", "grandma", "grandpa", "gustave", "ian", "iven", "iven2", "john", "kaukovalta", "klatt", "klatt2",
    "klatt3", "klatt4", "linda", "marcelo", "max", "michel", "miguel", "mike2", "norbert", "pablo", "paul", "pedro",
    "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2", "travis", "victor", "zac")
# (rate words/min, pitch 0-100, pitch range 0-100), cycled over a pool's variants.
_PROSODY = ((175, 50, 50), (160, 35, 30), (190, 65, 70), (150, 45, 80), (185, 30, 40), (165, 60, 60))
# The held-out engine's pool: Flite voices x paces (words a minute), en-US only.
FLITE_VOICES, FLITE_RATES = ("slt", "rms", "awb", "kal16"), (175, 155)
FLITE_UNSHARED = ("rms", "awb")  # Flite voices whose people no Festival voice was recorded from
# Festival's English voices x paces: a second engine for unlabelled speech (en-US only).
FESTIVAL_VOICES, FESTIVAL_RATES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"), (140, 155, 170, 185, 200)
POOL_SIZES = {"train": 12, "test": 4, "unlabelled": len(UNLABELLED_VARIANTS),
              "flite": len(FLITE_VOICES) * len(FLITE_RATES), "flite-unshared": len(FLITE_UNSHARED) * len(FLITE_RATES),
              "festival": len(FESTIVAL_VOICES) * len(FESTIVAL_RATES),
              "unlabelled+festival": len(UNLABELLED_VARIANTS) + len(FESTIVAL_VOICES) * len(FESTIVAL_RATES)}
ENGLISH_ONLY = ("flite", "flite-unshared", "festival", "unlabelled+festival")
SPLITS = tuple(POOL_SIZES)  # the pool names, for callers that list or offer them
# The unlabelled pool's prosody grid: each speaker takes one rate, pitch and range, by co-prime strides.
_RATES, _PITCHES, _RANGES = (140, 155, 170, 185, 200), (25, 40, 55, 70), (20, 45, 70, 95)


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str  # espeak-ng voice name, e.g. "en-us+f3"; "flite:slt", "festival:ked_diphone" for other engines
    rate: int
    pitch: int
    pitch_range: int


def speakers(locale: str, split: str = "train") -> list[Speaker]:
    """The fixed speaker pool of `locale` for `split` (one of SPLITS; see the module docstring)."""
    if locale not in VOICES:
        raise SlufitError(f"no espeak-ng voice for locale {locale!r}; known: {', '.join(VOICES)}")
    if split not in POOL_SIZES:
        raise SlufitError(f"speakers must be one of {', '.join(SPLITS)}, got {split!r}")
    if split in ENGLISH_ONLY and locale != "en-US":
        raise SlufitError(f"the {split} pool (Flite, Festival) speaks English only, not {locale!r}")
    if split in ("flite", "flite-unshared"):
        voices = FLITE_VOICES if split == "flite" else FLITE_UNSHARED
        return [Speaker(f"flite-{locale}-{voice}{rate}", f"flite:{voice}", rate, 0, 0)
                for voice in voices for rate in FLITE_RATES]
    if split == "festival":
        return [Speaker(f"festival-{locale}-fest{short}{rate}", f"festival:{voice}", rate, 0, 0)
                for voice, short in zip(FESTIVAL_VOICES, ("kal", "ked", "slt")) for rate in FESTIVAL_RATES]
    if split == "unlabelled+festival":
        return speakers(locale, "unlabelled") + speakers(locale, "festival")
    if split == "unlabelled":
        return [Speaker(f"espeak-{locale}-unlabelled{i:02d}", f"{VOICES[locale]}+{variant}", _RATES[i % 5],
                        _PITCHES[(i * 3) % 4], _RANGES[(i * 7 // 4) % 4])
                for i, variant in enumerate(UNLABELLED_VARIANTS)]
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
