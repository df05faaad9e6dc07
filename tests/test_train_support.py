"""Shared helpers of the training tests: a small corpus with real WAV files, a tiny random-weight
Qwen2-Audio saved as a slufit model folder (so the real registry and adapter load it), and
run configs. Imported by tests/test_train*.py, tests/test_schemes.py and tests/test_eval.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from slufit.data.example import Entity, Example, Recording, write_examples

INTENTS = [("alarm", "set", "time", "seven am"), ("weather", "query", "place_name", "paris"),
           ("play", "music", "genre", "jazz"), ("calendar", "set", "person", "mona")]
TEMPLATES = ["please {f}", "{f} now", "can you do {f}", "i want {f} today"]


def make_examples(prefix: str, n: int, speech: set[int], audio_dir: Path, locale: str = "en-US") -> list[Example]:
    """n examples; those whose index is in `speech` get a short WAV recording (a tone, 0.5-1 s)."""
    import soundfile as sf

    examples = []
    for i in range(n):
        scenario, action, slot, filler = INTENTS[i % len(INTENTS)]
        text = TEMPLATES[(i // len(INTENTS)) % len(TEMPLATES)].format(f=filler)
        recordings = ()
        if i in speech:
            path = audio_dir / f"{prefix}-{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            seconds = 0.5 + 0.1 * (i % 6)
            t = np.arange(int(16000 * seconds)) / 16000
            sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 40 * (i % len(INTENTS))) * t)).astype(np.float32), 16000)
            recordings = (Recording(f"audio/{path.name}", f"spk{i % 3}", seconds),)
        examples.append(Example(f"{prefix}-{i}", locale, text, scenario, action, f"{scenario}_{action}",
                                (Entity(slot, filler),), recordings, "test"))
    return examples


def make_corpus(root: Path, n_train: int = 16, train_speech: int = 4, n_dev: int = 4) -> dict[str, Path]:
    """train.jsonl (the first `train_speech` examples have audio) and dev.jsonl (all with audio)."""
    root.mkdir(parents=True, exist_ok=True)
    train = make_examples("tr", n_train, set(range(train_speech)), root / "audio")
    dev = make_examples("dv", n_dev, set(range(n_dev)), root / "audio")
    write_examples(root / "train.jsonl", train)
    write_examples(root / "dev.jsonl", dev)
    return {"train": root / "train.jsonl", "dev": root / "dev.jsonl"}


def make_model(folder: Path) -> Path:
    """A tiny random-weight Qwen2-Audio (hidden 32, 1 layer, 5 s window) saved where load_model reads it."""
    from slufit.models.lalm.adapter import LALMAdapter
    from slufit.models.lalm.families import family_for
    from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_tokenizer
    from slufit.target import format_target, instruction

    if (folder / "slufit_model.json").is_file() or any(folder.glob("*.json")):
        return folder
    examples = make_examples("tok", 16, set(), folder / "unused")
    texts = [e.text for e in examples] + [format_target(e) for e in examples] + [instruction()]
    model, processor = tiny_qwen2_audio(tiny_tokenizer(texts, vocab_size=400), hidden=32, layers=1,
                                        audio_d_model=32, audio_layers=1, window_s=5)
    LALMAdapter(model, processor.tokenizer, family=family_for(model), processor=processor).save(folder)
    return folder


def write_config(path: Path, corpus: dict[str, Path], model: Path, scheme: dict, **sections) -> Path:
    """A run config for the test corpus and model; `sections` merge into the defaults below."""
    config = {
        "model": {"name": str(model)},
        "data": {"train": [str(corpus["train"])], "dev": [str(corpus["dev"])]},
        "scheme": scheme,
        "train": {"seed": 0, "batch_size": 4, "lr": 1e-3, "warmup_ratio": 0.1, "log_every": 1},
        "eval": {"beams": 1, "batch_size": 8, "max_new_tokens": 8},
        "run_dir": str(path.parent / "run"),
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(config))
    return path


def summary_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]
