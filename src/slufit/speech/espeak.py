"""espeak-ng, in-process, through ctypes on the library bundled by the PyPI package `espeakng-loader`.

espeak-ng keeps global state and is not thread-safe: use one `Espeak` per
process (synthesis spreads work over processes, see `slufit.speech.synth`).
The engine speaks at 22050 Hz; `synthesize` returns 16 kHz mono float32.

Reproducible audio: espeak-ng's output depends on more than its input. Its noise
(breathy and whispered voices) comes from a generator seeded per process, and
static state in the library (the pitch flutter's position, filter memories)
carries from one utterance to the next and survives `espeak_Terminate` and a
new `espeak_Initialize`: the same text and voice sounded different after
another utterance, and differently in every process. So each utterance gets a
fresh engine (the library is unloaded with dlclose and loaded again, which
resets its static data; about 1 ms) and a fixed noise seed
(`espeak_ng_SetRandSeed`, and libc's `srand` for the Klatt voices, whose noise
comes from `rand()`): its audio depends only on text, voice, parameters and
seed, whatever was synthesized before it and in whichever process.
"""

from __future__ import annotations

import _ctypes
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
_LIBC = ctypes.CDLL(None)  # this process's C library (for srand)
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as err:
        raise SlufitError("speech synthesis needs espeak-ng: pip install 'slufit[tts]' (espeakng-loader)") from err
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class Espeak:
    """espeak-ng in this process: a fresh engine for every utterance (see the module docstring)."""

    def __init__(self) -> None:
        self._library, self._data = _paths()
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies.
        self._callback = _SYNTH_CALLBACK(self._collect)
        lib = self._open()
        try:
            lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
            lib.espeak_Info.restype = ctypes.c_char_p
            self.version = lib.espeak_Info(None).decode()
        finally:
            self._close(lib)

    def _open(self) -> ctypes.CDLL:
        """Load the library afresh (its static data as in a new process) and initialise it."""
        lib = ctypes.CDLL(self._library)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        # espeak-ng's data path is the folder that *contains* espeak-ng-data.
        self.input_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.path.dirname(self._data).encode(), 0)
        if self.input_rate <= 0:
            self._close(lib)
            raise SlufitError(f"espeak-ng failed to initialise (data {self._data})")
        lib.espeak_SetSynthCallback(self._callback)
        return lib

    @staticmethod
    def _close(lib: ctypes.CDLL) -> None:
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)  # our handle is the only one: the library unloads

    def _collect(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0: continue synthesis

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int = 0) -> np.ndarray:
        """16 kHz mono float32 audio of `text` spoken by `voice` (e.g. "en-us+f3") at rate (words/min),
        pitch and pitch range (0-100); `seed` fixes the noise of breathy and whispered voices."""
        if not text.strip():
            raise SlufitError("cannot synthesize empty text")
        lib = self._open()
        try:
            if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise SlufitError(f"espeak-ng has no voice {voice!r}")
            for param, value in ((_espeakRATE, rate), (_espeakPITCH, pitch), (_espeakRANGE, pitch_range),
                                 (_espeakVOLUME, 100)):
                lib.espeak_SetParameter(param, int(value), 0)
            lib.espeak_ng_SetRandSeed(int(seed) % 2**31)
            # Klatt voices (`klatt 6` in a variant file, e.g. Reed, caleb) draw their noise from libc's rand()
            # instead: seed it too (measured: those two voices differed between fresh runs, all others matched).
            _LIBC.srand(int(seed) % 2**31)
            self._chunks = []
            encoded = text.encode("utf-8") + b"\0"
            status = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _espeakCHARS_UTF8, None, None)
            if status != _EE_OK:
                raise SlufitError(f"espeak-ng failed on {text!r} (status {status})")
        finally:
            self._close(lib)
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
