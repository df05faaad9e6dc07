"""Adapters a checkpoint brings (Granite Speech's audio LoRA, Phi-4-multimodal's speech-lora) beside slufit's
full fine-tuning and LoRA: loaded, on for speech and off for text in training and evaluation alike, saved and
loaded back (tiny random-weight models of the real classes, offline, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from peft import LoraConfig, get_peft_model

from slufit.data.example import Entity, Example
from slufit.models.base import SLUItem
from slufit.models.lalm import granite_speech, phi4_multimodal
from slufit.models.registry import load_model
from slufit.target import format_target

EXAMPLES = [
    Example(id="a", locale="en-US", text="wake me up at seven am", scenario="alarm", action="set",
            intent="alarm_set", entities=(Entity("time", "seven am"),)),
    Example(id="b", locale="en-US", text="play some jazz", scenario="play", action="music", intent="play_music",
            entities=(Entity("music_genre", "jazz"),)),
]
# The checkpoints' adapters target the decoder's attention (Granite's: q_proj and v_proj; Phi-4's fused qkv_proj).
ADAPTERS = {"granite": (granite_speech, ["q_proj", "v_proj"], ""),
            "phi4": (phi4_multimodal, ["qkv_proj", "o_proj"], "speech-lora")}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    paths = []
    for i, seconds in enumerate([1.0, 1.6]):
        n = int(16000 * seconds)
        sf.write(folder / f"c{i}.wav", (0.1 * np.sin(np.arange(n) * 0.03 * (i + 1))).astype(np.float32), 16000)
        paths.append(folder / f"c{i}.wav")
    return paths


def texts():
    return [format_target(e) for e in EXAMPLES] + [e.text for e in EXAMPLES]


def text_items():
    return [SLUItem(e, "text") for e in EXAMPLES]


def speech_items(paths):
    return [SLUItem(e, "speech", audio_path=p) for e, p in zip(EXAMPLES, paths)]


def checkpoint(kind: str, folder, with_adapter: bool = True):
    """A tiny checkpoint folder as the hub's is laid out: the model, and its own audio LoRA (random, non-zero)
    where the family keeps it (Granite: the folder itself, `has_lora_adapter`; Phi-4: `speech-lora/`)."""
    module, targets, subfolder = ADAPTERS[kind]
    model, tokenizer, processor, fe = module.tiny(texts())
    if kind == "granite":
        model.config.has_lora_adapter = with_adapter
    for part in (model, tokenizer, fe):
        part.save_pretrained(folder)
    if with_adapter:
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
        torch.manual_seed(1)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
        peft_model.save_pretrained(folder / subfolder if subfolder else folder)
    return folder


@pytest.fixture(scope="module", params=sorted(ADAPTERS))
def folders(request, tmp_path_factory):
    """(family kind, checkpoint with its audio adapter, the same weights without it)."""
    root = tmp_path_factory.mktemp(request.param)
    return (request.param, checkpoint(request.param, root / "with"),
            checkpoint(request.param, root / "without", with_adapter=False))


def losses(adapter, audio) -> tuple[float, float]:
    adapter.module.eval()
    with torch.no_grad():
        return (adapter.loss(adapter.collate(text_items())).item(),
                adapter.loss(adapter.collate(speech_items(audio))).item())


def test_the_checkpoint_audio_adapter_is_on_for_speech_and_off_for_text(folders, audio):
    kind, with_adapter, without = folders
    adapter, plain = load_model(with_adapter), load_model(without)
    name = ADAPTERS[kind][0].FAMILY.audio_adapter[0]
    assert adapter.module.audio_adapter == name and plain.module.audio_adapter is None
    assert any(f".lora_A.{name}." in n for n, _ in adapter.module.hf.named_parameters())
    text, speech = losses(adapter, audio)
    plain_text, plain_speech = losses(plain, audio)
    assert text == pytest.approx(plain_text, abs=1e-6)  # off for text: the base model alone
    assert abs(speech - plain_speech) > 1e-3  # on for speech
    # The same state in evaluation: a text generate leaves nothing switched for the next text loss (Granite's own
    # generate switches its adapter off and never back on, and refuses peft 0.21 outright).
    assert adapter.generate(text_items(), max_new_tokens=3) == plain.generate(text_items(), max_new_tokens=3)
    assert losses(adapter, audio) == (text, speech)
    adapter.generate(speech_items(audio), max_new_tokens=3)
    assert losses(adapter, audio) == (text, speech)


def test_full_finetuning_trains_the_base_weights_and_keeps_the_adapter_through_save_and_load(folders, audio, tmp_path):
    kind, with_adapter, _ = folders
    adapter = load_model(with_adapter)
    named = dict(adapter.module.hf.named_parameters())
    base = [n for n in named if adapter.part_of(n) == "language_model" and ".lora_" not in n]
    assert base and all(named[n].requires_grad for n in base)  # not only the adapter's lora_ weights
    assert any(".base_layer." in n for n in base)
    before = losses(adapter, audio)
    # a text batch switched the audio adapter off, not its trainability (full fine-tuning trains it too)
    assert all(p.requires_grad for n, p in adapter.module.hf.named_parameters() if ".lora_" in n)
    adapter.save(tmp_path / "run")
    subfolder = ADAPTERS[kind][0].FAMILY.audio_adapter[1]
    assert (tmp_path / "run" / "model" / subfolder / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    loaded = load_model(tmp_path / "run")
    assert loaded.module.audio_adapter == adapter.module.audio_adapter
    assert losses(loaded, audio) == pytest.approx(before, abs=1e-5)


def test_slufit_lora_sits_beside_the_checkpoint_adapter(folders, audio, tmp_path):
    kind, with_adapter, _ = folders
    full = load_model(with_adapter)
    adapter = load_model(with_adapter, lora={"r": 2, "dropout": 0.0})
    assert adapter.module.lora_name == "slufit" and adapter.module.audio_adapter == full.module.audio_adapter
    named = dict(adapter.module.hf.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    name = ADAPTERS[kind][0].FAMILY.audio_adapter[0]
    assert trainable and all(".slufit" in n for n in trainable if adapter.part_of(n) == "language_model")
    assert not any(f".{name}." in n for n in trainable)  # the checkpoint's adapter is part of the frozen base
    # slufit's LoRA starts at zero, so the losses are the full model's: the checkpoint adapter is on for speech.
    assert losses(adapter, audio) == pytest.approx(losses(full, audio), abs=1e-6)
    frozen = {n: p.detach().clone() for n, p in named.items() if f".{name}." in n}
    adapter.module.train()
    optimizer = torch.optim.AdamW([p for p in adapter.module.parameters() if p.requires_grad], lr=1e-2)
    for items in (speech_items(audio), text_items()):
        adapter.loss(adapter.collate(items)).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.equal(p, named[n]) for n, p in frozen.items())
    after = losses(adapter, audio)
    assert after != pytest.approx(losses(full, audio), abs=1e-6)
    for items in (text_items(), speech_items(audio)):  # generation leaves both adapters as the losses need them
        adapter.generate(items, max_new_tokens=2)
        assert losses(adapter, audio) == after
    adapter.save(tmp_path / "run")
    assert (tmp_path / "run" / "adapter" / "slufit" / "adapter_config.json").is_file()
    loaded = load_model(tmp_path / "run")
    assert loaded.module.lora_name == "slufit" and loaded.module.audio_adapter == adapter.module.audio_adapter
    assert losses(loaded, audio) == pytest.approx(after, abs=1e-5)


def test_slufit_models_names_the_built_in_adapters(capsys):
    from slufit.cli import main

    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["phi-4-multimodal"]["builtin_adapter"] == "speech-lora (loaded; on for speech only)"
    assert rows["granite-speech-3.3-2b"]["builtin_adapter"] == "audio LoRA (loaded; on for speech only)"
    assert rows["qwen2-audio-7b-instruct"]["builtin_adapter"] == "-"
    assert main(["models"]) == 0
    assert "speech-lora (loaded; on for speech only)" in capsys.readouterr().out
