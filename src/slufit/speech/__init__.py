"""Speech synthesis with espeak-ng (in-process, ctypes): speakers, cache, multiprocessing. See `synth`."""
