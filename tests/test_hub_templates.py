"""Each family's prompts rendered through its checkpoint's real chat template (tests/fixtures/hub/<family>/, sources
and licences in SOURCES.md there), pinned to the exact string the model card documents; label mask and stop token
checked on the real tokenizer where one is had offline (Voxtral's tekken, through mistral-common), on the family's
test tokenizer carrying the real template otherwise. `python -m pytest -q -k hub_template` runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from jinja2.exceptions import TemplateError

from slufit.data.example import Entity, Example
from slufit.models.base import SLUItem
from slufit.models.lalm import audio_flamingo3, granite_speech, phi4_multimodal, qwen2_audio, voxtral
from slufit.models.lalm.adapter import IGNORE, LALMAdapter
from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_tokenizer
from slufit.target import INSTRUCTION, format_target

HUB = Path(__file__).parent / "fixtures" / "hub"
EXAMPLE = Example(id="e1", locale="en-US", text="wake me up at seven am", scenario="alarm", action="set",
                  intent="alarm_set", entities=(Entity("time", "seven am"),))
TRANSCRIPT = f"Transcript: {EXAMPLE.text}\n{INSTRUCTION}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    sf.write(path, (0.1 * np.sin(np.arange(32000) * 0.05)).astype(np.float32), 16000)  # 2 s
    return path


def items(clip: Path) -> tuple[SLUItem, SLUItem]:
    return SLUItem(EXAMPLE, "text"), SLUItem(EXAMPLE, "speech", audio_path=clip)


def adapter_with(module, template: str) -> LALMAdapter:
    """The family's tiny model, its test tokenizer carrying the checkpoint's real template."""
    model, tokenizer, processor, fe = module.tiny([EXAMPLE.text, format_target(EXAMPLE)])
    tokenizer.chat_template = template
    if processor is not None:
        processor = module.FAMILY.processor(fe, tokenizer)
    return LALMAdapter(model, tokenizer, family=module.FAMILY, processor=processor, feature_extractor=fe)


def check_label_mask(adapter: LALMAdapter, item: SLUItem) -> None:
    """Labels are exactly the target and the family's closing token, which is also a stop token."""
    batch = adapter.collate([item])
    labels = batch["labels"][0]
    kept = labels[labels != IGNORE].tolist()
    end = adapter.tokenizer.convert_tokens_to_ids(adapter.family.end_token)
    assert kept[-1] == end and end in adapter._stop_ids()
    assert adapter.tokenizer.decode(kept[:-1]) == format_target(EXAMPLE)
    assert (labels != IGNORE).sum() == len(kept) and labels[-len(kept):].tolist() == kept


def test_hub_template_qwen2_audio(clip):
    template = (HUB / "qwen2_audio" / "chat_template.jinja").read_text()
    tokenizer = tiny_tokenizer([EXAMPLE.text, format_target(EXAMPLE)])
    own_prompts = []
    for chat_template in (qwen2_audio.CHAT_TEMPLATE, template):  # slufit's test tokenizer's own, then the real one
        tokenizer.chat_template = chat_template
        model, processor = tiny_qwen2_audio(tokenizer)
        adapter = LALMAdapter(model, tokenizer, family=qwen2_audio.FAMILY, processor=processor)
        own_prompts.append([adapter.prompt(i) for i in items(clip)])
    assert own_prompts[0] == own_prompts[1]
    text, speech = items(clip)
    head = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert adapter.prompt(text) == f"{head}{TRANSCRIPT}<|im_end|>\n<|im_start|>assistant\n"
    assert adapter.prompt(speech) == (f"{head}Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n{INSTRUCTION}<|im_end|>\n"
                                      "<|im_start|>assistant\n")
    check_label_mask(adapter, text)


def test_hub_template_granite_speech(clip):
    template = (HUB / "granite_speech" / "chat_template.jinja").read_text()
    adapter = adapter_with(granite_speech, template)
    text, speech = items(clip)
    system = ("<|start_of_role|>system<|end_of_role|>Knowledge Cutoff Date: April 2024.\nToday's Date: April 9, 2025.\n"
              "You are Granite, developed by IBM. You are a helpful AI assistant<|end_of_text|>\n")
    tail = "<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>"
    assert adapter.prompt(text) == f"{system}<|start_of_role|>user<|end_of_role|>{TRANSCRIPT}{tail}"
    assert adapter.prompt(speech) == f"{system}<|start_of_role|>user<|end_of_role|><|audio|>{INSTRUCTION}{tail}"
    # the slufit test tokenizer's own template renders the family's prompts identically
    own = adapter_with(granite_speech, granite_speech.CHAT_TEMPLATE)
    assert [own.prompt(i) for i in (text, speech)] == [adapter.prompt(i) for i in (text, speech)]
    # list content, which slufit sent before, is what the real template cannot take
    with pytest.raises((TypeError, TemplateError)):
        adapter.tokenizer.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                                              tokenize=False)
    check_label_mask(adapter, text)


def test_hub_template_audio_flamingo3(clip):
    tokenizer_template = (HUB / "audio_flamingo3" / "tokenizer_chat_template.jinja").read_text()
    processor_template = (HUB / "audio_flamingo3" / "processor_chat_template.jinja").read_text()
    adapter = adapter_with(audio_flamingo3, tokenizer_template)
    text, speech = items(clip)
    head = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert adapter.prompt(text) == f"{head}{TRANSCRIPT}<|im_end|>\n<|im_start|>assistant\n"
    assert adapter.prompt(speech) == f"{head}<sound>{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    # the processor's template takes the list form of the same turn and renders the same string
    processor = adapter.processor
    listed = [{"role": "user",
               "content": [{"type": "audio", "audio": str(clip)}, {"type": "text", "text": INSTRUCTION}]}]
    assert processor.apply_chat_template(listed, chat_template=processor_template, add_generation_prompt=True,
                                         tokenize=False) == adapter.prompt(speech)
    own = adapter_with(audio_flamingo3, audio_flamingo3.CHAT_TEMPLATE)
    assert [own.prompt(i) for i in (text, speech)] == [adapter.prompt(i) for i in (text, speech)]
    check_label_mask(adapter, text)
    batch = adapter.collate([speech])  # the real processor expands the one <sound> to the clip's frames
    assert int((batch["input_ids"] == adapter.tokenizer.convert_tokens_to_ids("<sound>")).sum()) == 50


def test_hub_template_phi4_multimodal(clip):
    template = (HUB / "phi4_multimodal" / "chat_template.jinja").read_text()
    adapter = adapter_with(phi4_multimodal, template)
    text, speech = items(clip)
    assert adapter.prompt(text) == f"<|user|>{TRANSCRIPT}<|end|><|assistant|>"
    assert adapter.prompt(speech) == f"<|user|><|audio|>{INSTRUCTION}<|end|><|assistant|>"
    own = adapter_with(phi4_multimodal, phi4_multimodal.CHAT_TEMPLATE)
    assert [own.prompt(i) for i in (text, speech)] == [adapter.prompt(i) for i in (text, speech)]
    with pytest.raises((TypeError, TemplateError)):
        adapter.tokenizer.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "x"}]}],
                                              tokenize=False)
    check_label_mask(adapter, text)


# ---------------------------------------------------------------- Voxtral through mistral-common


def tekken(folder: Path) -> Path:
    """A tekken.json for Voxtral assembled from the real tekken vocabulary mistral-common ships
    (`tekken_240911.json`), Voxtral's control-token ranks and its audio settings (SOURCES.md, voxtral)."""
    import mistral_common

    spec = json.loads((HUB / "voxtral" / "voxtral_tekken_spec.json").read_text())
    source = json.loads((Path(mistral_common.__file__).parent / "data" / spec["vocabulary"]).read_text())
    named = {int(rank): name for rank, name in spec["special_tokens"].items()}
    special = [{"rank": i, "token_str": named.get(i, f"<SPECIAL_{i}>"), "is_control": True}
               for i in range(source["config"]["default_num_special_tokens"])]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tekken.json").write_text(json.dumps({
        "config": {**source["config"], "version": spec["version"]}, "vocab": source["vocab"],
        "special_tokens": special, "audio": spec["audio"]}))
    return folder


@pytest.fixture(scope="module")
def mistral_tokenizer(tmp_path_factory):
    pytest.importorskip("mistral_common", reason="mistral-common (Voxtral's tokenizer) is not installed: "
                                                 "pip install 'slufit[voxtral]'")
    from transformers.tokenization_mistral_common import MistralCommonBackend

    return MistralCommonBackend.from_pretrained(tekken(tmp_path_factory.mktemp("voxtral")))


def test_hub_template_voxtral_through_mistral_common(mistral_tokenizer, clip):
    model, tokenizer, processor, fe = voxtral.tiny(window_s=30, tokenizer=mistral_tokenizer)
    adapter = LALMAdapter(model, tokenizer, family=voxtral.FAMILY, processor=processor, feature_extractor=fe)
    text, speech = items(clip)
    text_ids, speech_ids = adapter.prompt(text), adapter.prompt(speech)
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False)  # noqa: E731
    assert decode(text_ids) == f"<s>[INST]{TRANSCRIPT}[/INST]"
    # the control tokens are single ids (as text, "[INST]" would be ordinary tokens), the audio tokens placed by
    # mistral-common: 375 [AUDIO] (id 24) for a 2 s clip padded to one 30 s chunk, after [BEGIN_AUDIO] (id 25)
    assert text_ids[:2] == [1, 3] and text_ids[-1] == 4
    assert speech_ids[:3] == [1, 3, 25] and speech_ids[3:378] == [24] * 375 and speech_ids[-1] == 4
    assert decode(speech_ids) == "<s>[INST][BEGIN_AUDIO]" + "[AUDIO]" * 375 + f"{INSTRUCTION}[/INST]"
    assert tokenizer.encode("[INST]", add_special_tokens=False) != [3]
    for item in (text, speech):
        batch = adapter.collate([item])
        labels = batch["labels"][0]
        kept = labels[labels != IGNORE].tolist()
        assert kept[-1] == 2 and 2 in adapter._stop_ids()  # </s>
        assert decode(kept[:-1]) == format_target(EXAMPLE)
    assert int((batch["input_ids"] == 24).sum()) == 375 and batch["input_features"].shape[-1] == 3000
    assert torch.isfinite(adapter.loss(batch))
    assert len(adapter.generate([text, text], max_new_tokens=2)) == 2
