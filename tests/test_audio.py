"""Audio loading: always float32 mono 16 kHz, and readable errors for unusable files."""

import numpy as np
import pytest
import soundfile as sf

from slufit.data.audio import SAMPLE_RATE, AudioError, decode_audio, load_audio, load_audios, write_audio
from slufit.errors import DataError


def _tone(seconds, rate, freq=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_44k_becomes_mono_16k(tmp_path):
    left = _tone(0.5, 44_100)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, left], axis=1), 44_100, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape == (8_000,)  # 0.5 s at 16 kHz
    # Resampling keeps the tone: its peak stays near 0.5 and its spectrum peaks at 440 Hz.
    assert abs(float(np.abs(audio).max()) - 0.5) < 0.02
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(audio) - 440) <= 2


def test_16k_flac_passes_through_unchanged(tmp_path):
    tone = _tone(0.25, SAMPLE_RATE)
    write_audio(tmp_path / "a.flac", tone)
    audio = load_audio(tmp_path / "a.flac")
    assert audio.shape == tone.shape
    assert np.allclose(audio, tone, atol=1e-4)  # FLAC is 16-bit: equal within quantisation


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such audio file"),
    ("garbage", "cannot read audio"),
    ("empty", "empty audio"),
    ("silent", "audio is silent"),
])
def test_unusable_files_raise_audio_error_naming_the_file(tmp_path, kind, message):
    path = tmp_path / f"{kind}.wav"
    if kind == "garbage":
        path.write_bytes(b"this is not audio at all")
    elif kind == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    elif kind == "silent":
        sf.write(path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert isinstance(info.value, DataError)
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_batch_keeps_good_files_when_one_is_bad(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(0.1, 8_000), 8_000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....")
    arrays, errors = load_audios([good, bad, good])
    assert [a is None for a in arrays] == [False, True, False]
    assert arrays[0].shape == (1_600,) and np.array_equal(arrays[0], arrays[2])
    assert errors[0] is None and errors[2] is None and str(bad) in str(errors[1])


def test_decode_audio_from_bytes(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, _tone(0.2, 22_050), 22_050)
    assert decode_audio(path.read_bytes(), "row 3").shape == (3_200,)
    with pytest.raises(AudioError, match="^row 3: cannot decode audio"):
        decode_audio(b"nope", "row 3")
