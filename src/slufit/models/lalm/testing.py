"""Tiny random-weight configurations of the real LALM classes, built offline.

Tests and CPU benchmarks use these to exercise exactly the code paths a full-size
Qwen2-Audio or Qwen2.5-Omni takes (same classes, same processors, same chat
template and special tokens), at a size that trains in seconds on a CPU. Nothing
here downloads anything: the tokenizer is trained on the given texts
(slufit.models.lalm.tokenizer) and the feature extractor is a plain WhisperFeatureExtractor.

`window_s` shortens the audio window (Whisper's is 30 s): the encoder's position
table and the feature extractor's padding shrink together, as whisper.cpp's
`audio_ctx` does, so a 2 s clip does not cost 30 s of encoder work.
"""

from __future__ import annotations

from typing import Iterable

from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor

from slufit.models.lalm.tokenizer import AUDIO, AUDIO_BOS, AUDIO_EOS, build_tokenizer

# Short sentences so the tokenizer has merges for the words tests use.
DEFAULT_TEXTS = [
    "wake me up at seven am tomorrow",
    "what is the weather like in paris",
    "play some jazz music in the kitchen",
    "remind me to call mona on tuesday",
    '{"scenario": "alarm", "action": "set", "entities": [{"type": "time", "filler": "seven am"}]}',
]


def tiny_tokenizer(texts: Iterable[str] | None = None, vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A tokenizer trained on `texts` plus the prompt's fixed parts, so that prompts are short."""
    from slufit.target import instruction

    texts = list(texts) if texts is not None else []
    fixed = [instruction(False), instruction(True), "You are a helpful assistant.", "Transcript: ", "Audio 1: "]
    return build_tokenizer(texts + (DEFAULT_TEXTS + fixed) * 4, vocab_size=vocab_size)


def feature_extractor(num_mel_bins: int = 128, window_s: int = 30) -> WhisperFeatureExtractor:
    """Whisper log-mel features at 16 kHz, padded to a `window_s` window."""
    return WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=16000, chunk_length=window_s)


def _text_sizes(hidden: int, layers: int, vocab: int) -> dict:
    return dict(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
    )


def tiny_qwen2_audio(tokenizer: PreTrainedTokenizerFast | None = None, hidden: int = 64, layers: int = 2,
                     audio_d_model: int = 64, audio_layers: int = 2, num_mel_bins: int = 128,
                     window_s: int = 5, seed: int = 0):
    """(model, processor) of a random-weight Qwen2AudioForConditionalGeneration in float32."""
    import torch
    from transformers import (Qwen2AudioConfig, Qwen2AudioEncoderConfig, Qwen2AudioForConditionalGeneration,
                              Qwen2AudioProcessor, Qwen2Config)

    tokenizer = tokenizer or tiny_tokenizer()
    audio_config = Qwen2AudioEncoderConfig(
        num_mel_bins=num_mel_bins, encoder_layers=audio_layers, encoder_attention_heads=2,
        encoder_ffn_dim=2 * audio_d_model, d_model=audio_d_model, max_source_positions=window_s * 50,
    )
    text_config = Qwen2Config(**_text_sizes(hidden, layers, len(tokenizer)), pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    config = Qwen2AudioConfig(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(),
                              audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO))
    config.audio_config.model_type = "qwen2_audio_encoder"
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).float()
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor(num_mel_bins, window_s), tokenizer=tokenizer,
                                    chat_template=tokenizer.chat_template)
    return model, processor


def tiny_qwen_omni_thinker(tokenizer: PreTrainedTokenizerFast | None = None, hidden: int = 64, layers: int = 2,
                           audio_d_model: int = 64, audio_layers: int = 2, num_mel_bins: int = 128, seed: int = 0):
    """(model, feature_extractor, tokenizer) of a random-weight Qwen2_5OmniThinkerForConditionalGeneration.

    Its processor also wants image and video processors (torchvision); audio-only use needs
    only the feature extractor and the tokenizer, which is what the adapter takes.
    """
    import torch
    from transformers import (Qwen2_5OmniAudioEncoderConfig, Qwen2_5OmniTextConfig, Qwen2_5OmniThinkerConfig,
                              Qwen2_5OmniThinkerForConditionalGeneration, Qwen2_5OmniVisionEncoderConfig)

    tokenizer = tokenizer or tiny_tokenizer()
    audio_config = Qwen2_5OmniAudioEncoderConfig(
        num_mel_bins=num_mel_bins, encoder_layers=audio_layers, encoder_attention_heads=2,
        encoder_ffn_dim=2 * audio_d_model, d_model=audio_d_model, output_dim=hidden, n_window=50,
    )
    vision_config = Qwen2_5OmniVisionEncoderConfig(depth=1, hidden_size=32, intermediate_size=32, num_heads=2,
                                                   out_hidden_size=hidden, fullatt_block_indexes=[0])
    head_dim = hidden // 4
    text_config = Qwen2_5OmniTextConfig(
        **_text_sizes(hidden, layers, len(tokenizer)), pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                         "mrope_section": [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]},
    )
    # Token ids the thinker needs to know; the image/video ones only have to be distinct ids.
    config = Qwen2_5OmniThinkerConfig(
        audio_config=audio_config.to_dict(), vision_config=vision_config.to_dict(), text_config=text_config.to_dict(),
        audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO),
        audio_start_token_id=tokenizer.convert_tokens_to_ids(AUDIO_BOS),
        audio_end_token_id=tokenizer.convert_tokens_to_ids(AUDIO_EOS),
        image_token_index=len(tokenizer) - 1, video_token_index=len(tokenizer) - 2, user_token_id=0,
        # Not declared fields, but the real checkpoint's config carries them and get_rope_index reads them.
        vision_start_token_id=len(tokenizer) - 3, vision_end_token_id=len(tokenizer) - 4,
    )
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config).float()
    return model, feature_extractor(num_mel_bins, 30), tokenizer
