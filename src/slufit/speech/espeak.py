"""espeak-ng, in-process, through ctypes on the library bundled by the PyPI package `espeakng-loader`.

espeak-ng keeps global state and is not thread-safe: use one `Espeak` per
process (synthesis spreads work over processes, see `slufit.speech.synth`).
The engine speaks at 22050 Hz; `synthesize` returns 16 kHz mono float32.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
import soxr

from slufit.errors import SlufitError

SAMPLE_RATE = 16000

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_espeakCHARS_UTF8 = 1
_POS_CHARACTER = 1
_espeakRATE, _espeakVOLUME, _espeakPITCH, _espeakRANGE = 1, 2, 3, 4
_EE_OK = 0
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as err:
        raise SlufitError("speech synthesis needs espeak-ng: pip install 'slufit[tts]' (espeakng-loader)") from err
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class Espeak:
    """One initialised espeak-ng engine (per process)."""

    def __init__(self) -> None:
        library, data = _paths()
        self._lib = ctypes.CDLL(library)
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        # espeak-ng's data path is the folder that *contains* espeak-ng-data.
        self.input_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.path.dirname(data).encode(), 0)
        if self.input_rate <= 0:
            raise SlufitError(f"espeak-ng failed to initialise (data {data})")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SYNTH_CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0: continue synthesis

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """16 kHz mono float32 audio of `text` spoken by `voice` (e.g. "en-us+f3") at rate (words/min),
        pitch and pitch range (0-100)."""
        if not text.strip():
            raise SlufitError("cannot synthesize empty text")
        lib = self._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise SlufitError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_espeakRATE, rate), (_espeakPITCH, pitch), (_espeakRANGE, pitch_range),
                             (_espeakVOLUME, 100)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        encoded = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _espeakCHARS_UTF8, None, None)
        if status != _EE_OK:
            raise SlufitError(f"espeak-ng failed on {text!r} (status {status})")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        audio = samples.astype(np.float32) / 32768.0
        return soxr.resample(audio, self.input_rate, SAMPLE_RATE).astype(np.float32)


_ENGINE: Espeak | None = None


def engine() -> Espeak:
    """This process's engine, initialised on first use."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Espeak()
    return _ENGINE
