"""Speech synthesis: real espeak-ng audio, speakers, cache, noise, CLI and its errors."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from slufit.data.audio import SAMPLE_RATE
from slufit.cli import main
from slufit.data.example import Example, read_examples, resolve_audio, write_examples
from slufit.errors import SlufitError
from slufit.speech.speakers import TEST_VARIANTS, TRAIN_VARIANTS, VOICES, speaker_for, speakers
from slufit.speech.synth import add_noise, synthesize_examples

pytest.importorskip("espeakng_loader")

TEXTS = {
    "en-US": ["wake me up at seven am tomorrow", "lights off please", "play hello by adele"],
    "fr-FR": ["réveille moi à sept heures demain", "allume la radio"],
    "de-DE": ["weck mich um sieben uhr morgen", "mach lauter"],
    "es-ES": ["despiértame a las siete mañana", "sube el volumen"],
}


def _examples():
    out = []
    for locale, texts in TEXTS.items():
        for i, text in enumerate(texts):
            out.append(Example(id=f"t-{locale}-{i}", locale=locale, text=text, scenario="alarm", action="set",
                               intent="alarm_set", entities=(), source="test"))
    return out


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    out = tmp_path_factory.mktemp("speech")
    stats = {}
    examples = synthesize_examples(_examples(), out, workers=2, progress=False, stats=stats)
    write_examples(out / "data.jsonl", examples)
    return out, examples, stats


def test_audio_is_16k_mono_nonsilent_and_plausible(synthesized):
    out, examples, stats = synthesized
    assert stats["synthesized"] == len(examples) and stats["cached"] == 0
    for e in read_examples(out / "data.jsonl"):
        (rec,) = e.recordings
        assert rec.path.startswith("audio/") and rec.speaker.startswith(f"espeak-{e.locale}-train")
        path = resolve_audio(rec, out / "data.jsonl")
        info = sf.info(str(path))
        assert info.samplerate == 16000 and info.channels == 1
        audio, _ = sf.read(str(path), dtype="float32")
        assert np.sqrt(np.mean(audio ** 2)) > 0.01
        assert abs(rec.duration - len(audio) / 16000) < 0.01
        words = len(e.text.split())
        # espeak speaks 150-190 words a minute, plus short pauses at either end.
        assert 0.15 * words < rec.duration < 0.6 * words + 0.8, (e.text, rec.duration)


def test_longer_text_gives_longer_audio(tmp_path):
    short = Example("a", "en-US", "hello", "general", "joke", "general_joke")
    long = Example("b", "en-US", "hello how are you doing this fine morning my friend", "general", "joke",
                   "general_joke")
    a, b = synthesize_examples([short, long], tmp_path, workers=1, progress=False)
    assert b.recordings[0].duration > 2 * a.recordings[0].duration


def test_second_run_uses_cache(synthesized, tmp_path):
    out, examples, _ = synthesized
    stats = {}
    again = synthesize_examples(_examples(), out, workers=2, progress=False, stats=stats)
    assert stats["synthesized"] == 0 and stats["cached"] == len(examples)
    assert [e.recordings for e in again] == [e.recordings for e in examples]


def test_speaker_pools_disjoint():
    assert not set(TRAIN_VARIANTS) & set(TEST_VARIANTS)
    for locale in ("en-US", "fr-FR", "de-DE", "es-ES"):
        train, test = speakers(locale, "train"), speakers(locale, "test")
        assert len(train) == 12 and len(test) == 4
        assert len({(s.voice, s.rate, s.pitch, s.pitch_range) for s in train}) == 12
        assert not {s.voice for s in train} & {s.voice for s in test}
        assert not {s.id for s in train} & {s.id for s in test}
    pool = speakers("en-US", "train")
    assert speaker_for("x-1", pool) == speaker_for("x-1", pool)
    assert len({speaker_for(f"x-{i}", pool).id for i in range(200)}) == 12


def test_the_unlabelled_pool_is_wide_and_never_a_test_voice():
    from slufit.speech.espeak import engine

    # The bridge's unlabelled speech: the training variants plus more, none of the test variants, each a
    # distinct (voice, prosody) and a voice espeak-ng really has (an unknown variant would fail to load).
    for locale in ("en-US", "fr-FR"):
        pool = speakers(locale, "unlabelled")
        variants = [s.voice.split("+", 1)[1] for s in pool]
        assert len(pool) == 75 and set(TRAIN_VARIANTS) <= set(variants)
        assert not set(variants) & set(TEST_VARIANTS)
        assert len({(s.voice, s.rate, s.pitch, s.pitch_range) for s in pool}) == 75
        assert not {s.id for s in pool} & {s.id for s in speakers(locale, "test") + speakers(locale, "train")}
    rates = {s.rate for s in speakers("en-US", "unlabelled")}
    assert len(rates) == 5  # a prosody grid, not one speaking rate
    # espeak-ng silently falls back to the plain voice for an unknown variant: check its data files.
    import espeakng_loader

    variant_files = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    for s in speakers("en-US", "unlabelled"):
        assert (variant_files / s.voice.split("+", 1)[1]).is_file(), s.voice
        assert engine().synthesize("a b", s.voice, s.rate, s.pitch, s.pitch_range).size > 1000, s.voice


def test_test_speakers_used_and_ids_subset(tmp_path):
    examples = _examples()
    chosen = [examples[0].id, examples[3].id]
    result = synthesize_examples(examples, tmp_path, speakers="test", ids=chosen, workers=1, progress=False)
    with_audio = [e for e in result if e.recordings]
    assert [e.id for e in with_audio] == chosen
    assert all("-test" in e.recordings[0].speaker for e in with_audio)


def test_noise_at_snr():
    clean = (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    noisy = add_noise(clean, 10.0, seed=1)
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 10.0) < 0.3
    assert np.array_equal(noisy, add_noise(clean, 10.0, seed=1))


def test_cli_writes_new_jsonl_and_keeps_input(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    examples = _examples()[:3]
    write_examples(data, examples)
    before = data.read_bytes()
    manifest = tmp_path / "budget.json"
    manifest.write_text(json.dumps({"seed": 0, "strategy": "random", "fraction": None, "count": 2,
                                    "ids": [examples[0].id, examples[2].id]}))
    out = tmp_path / "out"
    assert main(["speech", "synth", "--data", str(data), "--out", str(out), "--ids", str(manifest),
                 "--snr", "20", "--workers", "1"]) == 0
    assert data.read_bytes() == before
    result = read_examples(out / "in.jsonl")
    assert [bool(e.recordings) for e in result] == [True, False, True]
    assert result[0].recordings[0].path.endswith("-snr20.flac")
    assert "2 recordings (2 synthesized" in capsys.readouterr().out


def test_unknown_locale_fails_clearly(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    write_examples(data, [Example("z", "xx-XX", "hello", "general", "joke", "general_joke")])
    assert main(["speech", "synth", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "no espeak-ng voice for locale 'xx-XX'" in capsys.readouterr().err
    assert not (tmp_path / "o" / "in.jsonl").exists()


def test_empty_text_fails_clearly(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "e", "locale": "en-US", "text": "  ", "scenario": "general",
                                "action": "joke", "intent": "general_joke"}) + "\n")
    assert main(["speech", "synth", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "in.jsonl:1" in err and "text" in err


def test_unwritable_output_fails_and_keeps_earlier_output(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    write_examples(data, _examples()[:1])
    out = tmp_path / "out"
    assert main(["speech", "synth", "--data", str(data), "--out", str(out), "--workers", "1"]) == 0
    earlier = (out / "in.jsonl").read_bytes()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["speech", "synth", "--data", str(data), "--out", str(blocker / "o"), "--workers", "1"]) == 2
    assert "cannot write here" in capsys.readouterr().err
    assert (out / "in.jsonl").read_bytes() == earlier


def test_unknown_ids_fail(tmp_path, capsys):
    with pytest.raises(SlufitError, match="not in the data"):
        synthesize_examples(_examples(), tmp_path, ids=["nope"], progress=False)
    data = tmp_path / "in.jsonl"
    write_examples(data, _examples()[:2])
    manifest = tmp_path / "other.json"
    manifest.write_text(json.dumps({"seed": 0, "strategy": "random", "fraction": None, "count": 1, "ids": ["nope"]}))
    assert main(["speech", "synth", "--data", str(data), "--out", str(tmp_path / "o"), "--ids", str(manifest)]) == 2
    assert "other.json: 1 id(s) are not in" in capsys.readouterr().err


def test_every_listed_locale_has_a_voice():
    from slufit.speech.espeak import engine
    for locale in VOICES:
        assert engine().synthesize("a b c", speakers(locale)[0].voice, 175, 50, 50).size > 1000, locale


# ---- reproducible audio: the same text and speaker give the same bytes in any process and any order

_SYNTH_IN_ORDER = """
import ctypes, hashlib, sys
from slufit.speech.espeak import engine
texts = sys.argv[1:]
libc = ctypes.CDLL(None)
for _ in range(len(texts[0])):  # leave libc's rand() somewhere that depends on the order
    libc.rand()
for text in texts:
    for voice in ("en-us+f3", "en-us+whisper", "en-us+klatt2", "en-us+Reed", "en-us"):
        audio = engine().synthesize(text, voice, 165, 55, 40, seed=7)
        print(text, voice, hashlib.sha256(audio.tobytes()).hexdigest())
"""


def _synth_hashes(*texts: str) -> dict[tuple[str, str], str]:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SYNTH_IN_ORDER, *texts], capture_output=True, text=True, check=True)
    hashes = {}
    for line in out.stdout.splitlines():
        *words, voice, digest = line.split(" ")
        hashes[(" ".join(words), voice)] = digest
    return hashes


def test_espeak_audio_does_not_depend_on_the_process_or_what_was_said_before():
    """espeak-ng's noise is seeded per process and its static state carries from one utterance to the next
    (measured before the fix: breathy voices differed in every process, every voice after another utterance,
    and Klatt voices such as Reed, whose noise is libc's rand(), between fresh runs); each utterance now gets a
    fresh engine and fixed seeds."""
    a, b = "set an alarm for seven thirty", "play some jazz music please"
    first = _synth_hashes(a, b)
    second = _synth_hashes(b, a)  # another process, the other order
    assert first == second
    assert len(set(first.values())) == len(first), "every text and voice sounds different"


def test_two_fresh_builds_of_corpus_and_speech_are_byte_identical(tmp_path):
    """`slufit corpus` + `slufit speech synth` twice, in two folders with fresh caches: the same files."""
    import hashlib

    def build(folder: Path) -> dict[str, str]:
        assert main(["corpus", "build", "--out", str(folder / "corpus"), "--locales", "en-US", "--train", "6", "--dev", "2",
                     "--test", "4", "--pretrain", "2"]) == 0
        assert main(["speech", "synth", "--data", str(folder / "corpus" / "en-US" / "test.jsonl"),
                     "--out", str(folder / "speech"), "--speakers", "test", "--workers", "2"]) == 0
        files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    one, two = build(tmp_path / "one"), build(tmp_path / "two")
    assert any(name.endswith(".flac") for name in one)
    assert one == two


# ---- the held-out engine (Flite, from the operating system: apt-get install flite)

needs_flite = pytest.mark.skipif(__import__("shutil").which("flite") is None, reason="flite not installed")


def test_flite_pool_is_english_only_and_disjoint_from_espeak_voices():
    pool = speakers("en-US", "flite")
    assert len(pool) == 8 and all(s.voice.startswith("flite:") for s in pool)
    assert not {s.voice for s in pool} & {s.voice for split in ("train", "test", "unlabelled")
                                           for s in speakers("en-US", split)}
    with pytest.raises(SlufitError, match="English only"):
        speakers("fr-FR", "flite")


@needs_flite
def test_flite_voices_a_test_set_reproducibly(tmp_path):
    examples = [e for e in _examples() if e.locale == "en-US"]
    a = synthesize_examples(examples, tmp_path / "a", speakers="flite", workers=2, progress=False)
    b = synthesize_examples(examples, tmp_path / "b", speakers="flite", workers=1, progress=False)
    for x, y in zip(a, b):
        assert x.recordings[0].speaker.startswith("flite-en-US-")
        audio, rate = sf.read(str(tmp_path / "a" / x.recordings[0].path))
        assert rate == 16000 and 0.3 < len(audio) / rate < 5 and np.abs(audio).max() > 0.01
        assert (tmp_path / "a" / x.recordings[0].path).read_bytes() == (tmp_path / "b" / y.recordings[0].path).read_bytes()


# ---- a second engine for unlabelled speech (Festival, from the operating system; slufit.speech.festival)

needs_festival = pytest.mark.skipif(__import__("shutil").which("text2wave") is None, reason="festival not installed")


def test_festival_pools_add_an_engine_and_keep_flite_voices_out_that_share_its_people():
    festival_pool = speakers("en-US", "festival")
    assert len(festival_pool) == 15 and all(s.voice.startswith("festival:") for s in festival_pool)
    both = speakers("en-US", "unlabelled+festival")
    assert both == speakers("en-US", "unlabelled") + festival_pool and len({s.id for s in both}) == len(both)
    # Flite's slt and kal16 are the people of Festival's slt and kal: the unshared pool leaves them out.
    assert {s.voice for s in speakers("en-US", "flite-unshared")} == {"flite:rms", "flite:awb"}
    with pytest.raises(SlufitError, match="English only"):
        speakers("fr-FR", "unlabelled+festival")


@needs_festival
def test_festival_voices_speech_reproducibly_at_the_asked_pace(tmp_path):
    from slufit.speech import festival

    slow, fast = (festival.synthesize("set an alarm for seven am", "festival:ked_diphone", r) for r in (150, 200))
    assert slow.dtype == np.float32 and np.abs(slow).max() > 0.01 and len(slow) > 1.2 * len(fast)
    assert np.array_equal(fast, festival.synthesize("set an alarm for seven am", "ked_diphone", 200))
    hts = festival.synthesize("good morning", "festival:cmu_us_slt_arctic_hts", 175)  # 32 kHz voice, resampled
    assert 0.3 < len(hts) / SAMPLE_RATE < 3
    with pytest.raises(SlufitError, match="unknown Festival voice"):
        festival.synthesize("hi", "festival:nobody", 175)
    examples = [e for e in _examples() if e.locale == "en-US"][:3]
    voiced = synthesize_examples(examples, tmp_path / "a", speakers="festival", workers=1, progress=False)
    assert all(x.recordings[0].speaker.startswith("festival-en-US-fest") for x in voiced)
