"""`model.dtype`: the weights train() loads and `slufit eval` reloads are in the dtype the config asks for; LoRA
keeps fp32 adapters over a bf16 base. `slufit train --dry-run` prints the per-GPU memory under each launcher
config, from parameter counts read off the model's config on the meta device (or the known table)."""

from __future__ import annotations

import pytest
import torch

from slufit.cli import main as cli_main
from slufit.train.config import load_config, resolve_paths
from slufit.train.loop import train
from slufit.train.precision import load_dtype

from test_train_support import make_corpus, make_model, write_config

STUDY = "configs/qwen2_audio/slurp_curriculum.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    return {"root": root, "corpus": make_corpus(root / "corpus", n_train=8, train_speech=0, n_dev=2),
            "model": make_model(root / "model")}


def _floating_dtypes(module: torch.nn.Module) -> set[torch.dtype]:
    return {p.dtype for p in module.parameters() if p.is_floating_point()}


def test_a_bf16_config_trains_and_evaluates_bf16_weights(tiny, monkeypatch):
    from slufit.models import registry

    loaded: list[set[torch.dtype]] = []

    def recording_load(name, _load=registry.load_model, **options):
        model = _load(name, **options)
        loaded.append(_floating_dtypes(model.module))
        return model

    cfg = write_config(tiny["root"] / "bf16.yaml", tiny["corpus"], tiny["model"], {"name": "text_only", "epochs": 1},
                       eval={"beams": 1, "batch_size": 8, "max_new_tokens": 4, "modalities": ["text"]})
    config = resolve_paths(load_config(cfg, ["model.dtype=bfloat16", f"run_dir={tiny['root'] / 'bf16-run'}"]))
    summary = train(config, load=recording_load)
    assert loaded == [{torch.bfloat16}], "train() loaded weights in another dtype"
    assert summary["done"] and summary["steps"] == 2
    # `slufit eval` reloads the run's model in the dtype of its config.
    monkeypatch.setattr(registry, "load_model", recording_load)
    assert cli_main(["eval", "--run", config.run_dir, "--data", str(tiny["corpus"]["dev"]), "--modality", "text"]) == 0
    assert loaded[-1] == {torch.bfloat16} and len(loaded) == 2


def test_auto_dtype_per_device_and_lora_adapters_stay_fp32():
    assert load_dtype("auto", {}, "cpu") == torch.float32
    assert load_dtype("auto", {}, "cuda") == torch.bfloat16
    assert load_dtype("auto", {"dtype": "float16"}, "cpu") == torch.float16  # a legacy model.options.dtype
    assert load_dtype("float32", {}, "cuda") == torch.float32
    # LoRA over a bf16 base: peft keeps the adapters in fp32.
    from slufit.models.lalm.adapter import LALMAdapter
    from slufit.models.lalm.families import family_for
    from slufit.models.lalm.testing import tiny_qwen2_audio

    hf, processor = tiny_qwen2_audio(hidden=32, layers=1, audio_d_model=32, audio_layers=1)
    model = LALMAdapter(hf.to(torch.bfloat16), processor.tokenizer, family=family_for(hf), processor=processor,
                        lora={"r": 4})
    dtypes = {("lora_" in n, p.dtype) for n, p in model.module.named_parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}


def test_dry_run_prints_memory_and_verdicts_per_launcher(capsys):
    assert cli_main(["train", "--config", STUDY, "--dry-run", "--gpu-memory", "80"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  8gpu_")}
    assert set(lines) == {"8gpu_ddp.yaml", "8gpu_fsdp.yaml"}
    assert "8.40 B parameters (known table" in out and "full fine-tuning, 8.40 B trainable" in out
    assert lines["8gpu_ddp.yaml"].endswith("DOES NOT FIT 80 GB")  # 8-GPU DDP full fine-tuning of the 7B
    assert lines["8gpu_fsdp.yaml"].endswith("fits")
    peak = float(lines["8gpu_fsdp.yaml"].split()[-2])
    assert 20 < peak < 72
    # One launcher file and another card.
    assert cli_main(["train", "--config", STUDY, "--dry-run", "--accelerate-config",
                     "configs/accelerate/8gpu_fsdp.yaml", "--gpu-memory", "40"]) == 0
    out = capsys.readouterr().out
    assert "8gpu_ddp" not in out and "verdicts against 40 GB" in out
    assert [line for line in out.splitlines() if line.startswith("  8gpu_fsdp")][0].endswith("DOES NOT FIT 40 GB")


def test_parameter_counts_come_from_the_config_on_the_meta_device(tiny):
    from slufit.models.registry import load_model
    from slufit.train.memory import model_size

    size = model_size(str(tiny["model"]))
    assert size is not None and size.source == "config on the meta device"
    model = load_model(str(tiny["model"]))
    real = {}
    for name, param in model.module.hf.named_parameters():
        real[model.part_of(name)] = real.get(model.part_of(name), 0) + param.numel()
    assert {k: v for k, v in size.parts.items() if v} == real
    assert size.layers == 1 and size.hidden == 32
