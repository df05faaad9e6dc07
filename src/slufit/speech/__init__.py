"""Speech synthesis with espeak-ng (in-process, ctypes): speakers, cache, multiprocessing. See `synth`."""

from slufit.speech.synth import synthesize_examples  # noqa: E402  (the contract in docs/architecture.md)

__all__ = ["synthesize_examples"]
