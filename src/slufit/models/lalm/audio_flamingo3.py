"""NVIDIA Audio Flamingo 3 (`AudioFlamingo3ForConditionalGeneration`) through the LALM adapter.

Its parts: a Whisper-large-v3-style encoder (`model.audio_tower`, 128 mel bins, 30 s windows, 25 Hz after
pooling), a two-layer MLP projector (`model.multi_modal_projector`) and a Qwen2.5-7B decoder. Its processor
(`AudioFlamingo3Processor`) takes `audio=` and expands one `<sound>` per encoder frame; it splits audio
longer than a window into up to 20 windows (10 min). slufit reads one window per recording, so that a
recording's encoder output is one cache entry: a longer clip is refused, naming the file (SLURP clips are
far shorter).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slufit.models.lalm.common import body_for, chatml_template, family_tokenizer, text_sizes
from slufit.models.lalm.adapter import SAMPLE_RATE, Family

AUDIO_TOKEN = "<sound>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", AUDIO_TOKEN]
CHAT_TEMPLATE = chatml_template(AUDIO_TOKEN)
MODELS = {"audio-flamingo-3": "nvidia/audio-flamingo-3-hf"}
# Nominal sizes, as the model cards name them (nothing was downloaded here to count them).
SIZES = {"audio-flamingo-3": "8B (Qwen2.5-7B decoder + Whisper-large-v3-sized encoder)"}
MODEL_TYPES = ("audioflamingo3",)


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    # `audio=` (a wrong name is ignored); the processor pads text on the left itself.
    return dict(adapter.processor(text=prompts, audio=waves, sampling_rate=SAMPLE_RATE, return_tensors="pt"))


def _encode(model: nn.Module, features: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    tower = model.model.audio_tower
    features = features.to(tower.conv1.weight.device, tower.conv1.weight.dtype)
    mask = mask.to(tower.conv1.weight.device)
    hidden = tower(features, input_features_mask=mask).last_hidden_state
    _, lengths = tower._get_feat_extract_output_lengths(mask.sum(-1))
    return [hidden[i, :n] for i, n in enumerate(lengths.tolist())]


def _processor(feature_extractor, tokenizer):
    from transformers import AudioFlamingo3Processor

    return AudioFlamingo3Processor(feature_extractor=feature_extractor, tokenizer=tokenizer,
                                   chat_template=tokenizer.chat_template, audio_token=AUDIO_TOKEN)


FAMILY = Family(
    name="audio-flamingo-3",
    model_class="AudioFlamingo3ForConditionalGeneration",
    parts=(("model.audio_tower.", "audio_encoder"), ("model.multi_modal_projector.", "projector"),
           ("model.language_model.", "language_model"), ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=lambda model, enc: model.model.multi_modal_projector(enc),
    body=body_for("input_features", "input_features_mask"),
    audio_token=AUDIO_TOKEN,
    feature_keys=("input_features", "input_features_mask"),
    long_audio_is_error=True,
    processor=_processor,
    # Its tokenizer template concatenates `message['content']` as a string; its processor template renders a
    # list turn as `<sound>` then the text: the same string.
    audio_inline=AUDIO_TOKEN,
)


def tiny(texts=None, hidden: int = 32, layers: int = 1, audio_hidden: int = 32, audio_layers: int = 1,
         window_s: int = 5, seed: int = 0):
    """(model, tokenizer, processor, feature extractor) of a random-weight AudioFlamingo3ForConditionalGeneration,
    with its real processor class."""
    from transformers import (AudioFlamingo3Config, AudioFlamingo3EncoderConfig,
                              AudioFlamingo3ForConditionalGeneration, Qwen2Config)

    from slufit.models.lalm.testing import feature_extractor

    tokenizer = family_tokenizer(texts, SPECIAL_TOKENS, "<|im_end|>", "<|endoftext|>", CHAT_TEMPLATE)
    audio = AudioFlamingo3EncoderConfig(num_mel_bins=128, num_hidden_layers=audio_layers, num_attention_heads=2,
                                        intermediate_size=2 * audio_hidden, hidden_size=audio_hidden,
                                        max_source_positions=window_s * 50)
    text = Qwen2Config(**text_sizes(hidden, layers, len(tokenizer)), pad_token_id=tokenizer.pad_token_id,
                       eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    config = AudioFlamingo3Config(audio_config=audio.to_dict(), text_config=text.to_dict(),
                                  audio_token_id=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN))
    torch.manual_seed(seed)
    model = AudioFlamingo3ForConditionalGeneration(config).float()
    fe = feature_extractor(128, window_s)
    return model, tokenizer, _processor(fe, tokenizer), fe
