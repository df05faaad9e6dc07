"""FSDP2 on two CPU processes for every LALM family: train, generate, save, against one process.

    python benchmarks/fsdp_families.py                 # every family; ~20 s each on a shared 2-core machine
    python benchmarks/fsdp_families.py voxtral granite_speech

For each family a tiny random-weight model of its real class (the module's own `tiny()`, or the testing
configs for Qwen2-Audio and Qwen2.5-Omni) is saved as a slufit model, then trained on a small curriculum
(a text stage, then text + speech batches of tones) twice: `accelerate launch` of `slufit train` on two
CPU processes with configs/accelerate/8gpu_fsdp.yaml (slufit's own fully_shard, gloo), and one process with
the same global batch. It prints whether the FSDP2 run finished (trained, generated the dev and test
predictions on both ranks, saved a full model) and the largest difference between the two runs' final
weights. Not in the test suite for time; the suite runs FSDP2 on Qwen2-Audio (tests/test_train_distributed.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]
FAMILY_MODULES = ["audio_flamingo3", "qwen3_omni", "voxtral", "granite_speech", "phi4_multimodal"]
INTENTS = [("alarm", "set", "time", "seven am"), ("weather", "query", "place_name", "paris"),
           ("play", "music", "music_genre", "jazz"), ("calendar", "set", "person", "mona")]


def corpus(root: Path, n: int, speech: int) -> list:
    from slufit.data.example import Entity, Example, Recording, write_examples

    out = []
    for i in range(n):
        scenario, action, slot, filler = INTENTS[i % 4]
        recordings = ()
        if i < speech:
            path = root / "audio" / f"r{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(int(16000 * (0.5 + 0.1 * (i % 6)))) / 16000
            sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 40 * (i % 4)) * t)).astype(np.float32), 16000)
            recordings = (Recording(f"audio/{path.name}", "spk", 0.5),)
        out.append(Example(f"x{i}", "en-US", f"please {filler} now", scenario, action, f"{scenario}_{action}",
                           (Entity(slot, filler),), recordings, "bench"))
    write_examples(root / "train.jsonl", out)
    write_examples(root / "test.jsonl", out[:3])
    return out


def build(name: str, folder: Path, texts: list[str]) -> None:
    from slufit.models.lalm.adapter import LALMAdapter
    from slufit.models.lalm.families import family_for
    from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_qwen_omni_thinker, tiny_tokenizer

    if name == "qwen2_audio":
        model, processor = tiny_qwen2_audio(tiny_tokenizer(texts, vocab_size=400), hidden=32, layers=1,
                                            audio_d_model=32, audio_layers=1, window_s=5)
        adapter = LALMAdapter(model, processor.tokenizer, family=family_for(model), processor=processor)
    elif name == "qwen2_5_omni":
        model, fe, tokenizer = tiny_qwen_omni_thinker(tiny_tokenizer(texts, vocab_size=400), hidden=64, layers=1,
                                                      audio_d_model=32, audio_layers=1)
        adapter = LALMAdapter(model, tokenizer, family=family_for(model), feature_extractor=fe)
    else:
        model, tokenizer, processor, fe = importlib.import_module(f"slufit.models.lalm.{name}").tiny(texts)
        adapter = LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, feature_extractor=fe)
    adapter.save(folder)


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for file in sorted((folder / "model" / "model").glob("*.safetensors")):
        out.update(load_file(file))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=["qwen2_audio", "qwen2_5_omni", *FAMILY_MODULES])
    args = parser.parse_args()
    from slufit.target import format_target, instruction

    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        examples = corpus(root, 12, 4)
        texts = [e.text for e in examples] + [format_target(e) for e in examples] + [instruction()]
        for name in args.families:
            folder = root / name
            build(name, folder / "model", texts)
            config = {"model": {"name": str(folder / "model")},
                      "data": {"train": [str(root / "train.jsonl")], "test": [str(root / "test.jsonl")]},
                      "scheme": {"name": "curriculum", "text_epochs": 1, "mix_epochs": 1, "mix_lr": 5e-4},
                      "train": {"seed": 0, "batch_size": 2, "lr": 1e-3, "warmup_ratio": 0.1},
                      "eval": {"beams": 1, "batch_size": 8, "max_new_tokens": 8}}
            (folder / "c.yaml").write_text(yaml.safe_dump(config))
            fsdp = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                                   str(REPO / "configs/accelerate/8gpu_fsdp.yaml"), "--num_processes", "2",
                                   "--mixed_precision", "no", "-m", "slufit.cli", "train", "--config",
                                   str(folder / "c.yaml"), f"run_dir={folder / 'fsdp'}"],
                                  env=env, capture_output=True, text=True)
            one = subprocess.run([sys.executable, "-m", "slufit.cli", "train", "--config", str(folder / "c.yaml"),
                                  f"run_dir={folder / 'one'}", "train.batch_size=4"], env=env, capture_output=True,
                                 text=True)
            if fsdp.returncode or one.returncode:
                tail = (fsdp.stdout + fsdp.stderr if fsdp.returncode else one.stdout + one.stderr)[-600:]
                print(f"{name}: FAILED (fsdp rc {fsdp.returncode}, one process rc {one.returncode})\n{tail}")
                continue
            a, b = weights(folder / "fsdp"), weights(folder / "one")
            worst = max((a[k].float() - b[k].float()).abs().max().item() for k in b)
            print(f"{name}: FSDP2 on 2 processes trained, generated and saved {len(a)} tensors; "
                  f"max |weight difference| vs 1 process {worst:.2e}", flush=True)


if __name__ == "__main__":
    main()
