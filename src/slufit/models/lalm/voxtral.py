"""Mistral's Voxtral (`VoxtralForConditionalGeneration`) through the LALM adapter.

Its parts: a Whisper-large-v3 encoder (`model.audio_tower`, 128 mel bins, 30 s windows), whose 50 Hz
output is regrouped four frames at a time (`reshape(-1, audio_config.intermediate_size)`) into 12.5 Hz
frames for the projector (`model.multi_modal_projector`), and a Mistral/Llama decoder.

Quirks that matter here:
- every recording is padded to whole 30 s windows and the encoder takes no mask, so a clip gives
  375 `[AUDIO]` tokens per window whatever its length (a 2 s command costs as much as a 30 s one);
- the real processor (`VoxtralProcessor`) renders prompts only through mistral-common's tekken tokenizer
  (`MistralCommonBackend.apply_chat_template`) and hard-codes `[AUDIO]` as token id 24. mistral-common is
  not installed here and a tekken file cannot be made offline, so prompts are rendered by a Jinja
  template that writes mistral-common's layout (`<s>[INST][BEGIN_AUDIO][AUDIO]...text[/INST]answer</s>`) and
  the test tokenizer puts `[AUDIO]` at id 24 and `[BEGIN_AUDIO]` at 25 as tekken does; the features come
  from the real processor's own feature path (`VoxtralProcessor._retrieve_input_features`);
- Voxtral reads many windows (up to 30-40 min); slufit reads one window per recording (one cache entry)
  and refuses a longer clip, naming the file.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slufit.models.lalm.common import body_for, family_tokenizer, text_sizes
from slufit.models.lalm.adapter import SAMPLE_RATE, Family

AUDIO_TOKEN, BEGIN_AUDIO = "[AUDIO]", "[BEGIN_AUDIO]"
# Tekken's control tokens keep their ids (0-4, 11, 24, 25 named as in Voxtral's vocabulary).
SPECIAL_TOKENS = (["<unk>", "<s>", "</s>", "[INST]", "[/INST]"] + [f"<SPECIAL_{i}>" for i in range(5, 11)]
                  + ["<pad>"] + [f"<SPECIAL_{i}>" for i in range(12, 24)] + [AUDIO_TOKEN, BEGIN_AUDIO])
CHAT_TEMPLATE = (
    "<s>{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST]"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}[BEGIN_AUDIO][AUDIO]{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}[/INST]"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] }}</s>{% endif %}{% endfor %}"
)
MODELS = {"voxtral-mini-3b": "mistralai/Voxtral-Mini-3B-2507", "voxtral-small-24b": "mistralai/Voxtral-Small-24B-2507"}
# Nominal sizes, as the model names say (nothing was downloaded here to count them).
SIZES = {"voxtral-mini-3b": "3B decoder + ~0.6B encoder", "voxtral-small-24b": "24B decoder + ~0.6B encoder"}
MODEL_TYPES = ("voxtral",)


def _window_frames(adapter) -> int:
    return adapter.feature_extractor.nb_max_frames  # mel frames per window (3000 for 30 s)


def _features(adapter, waves: list[np.ndarray]) -> dict:
    """The real processor's own feature path: log-mel frames of whole windows (`VoxtralProcessor`)."""
    fe = adapter.feature_extractor
    features = adapter.processor._retrieve_input_features(
        waves, max_source_positions=_window_frames(adapter), sampling_rate=SAMPLE_RATE, padding=True,
        truncation=False, pad_to_multiple_of=fe.n_samples, return_tensors="pt")
    return {"input_features": features}


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    """String prompts (the Jinja layout of the test tokenizer): `[AUDIO]` expanded to a window's tokens."""
    config = adapter.model.config.audio_config
    per_window = config.max_source_positions * config.hidden_size // config.intermediate_size
    expanded = [adapter.family.expand_audio(p, per_window) for p in prompts]
    batch = dict(adapter.tokenizer(expanded, padding=True, return_tensors="pt", add_special_tokens=False))
    batch.update(_features(adapter, waves))
    return batch


def _encode(model: nn.Module, features: torch.Tensor, mask: None = None) -> list[torch.Tensor]:
    tower = model.model.audio_tower
    hidden = tower(features.to(tower.conv1.weight.device, tower.conv1.weight.dtype)).last_hidden_state
    grouped = hidden.reshape(hidden.shape[0], -1, model.config.audio_config.intermediate_size)
    return list(grouped.unbind(0))


def _processor(feature_extractor, tokenizer):
    from transformers import VoxtralProcessor

    return VoxtralProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


FAMILY = Family(
    name="voxtral",
    model_class="VoxtralForConditionalGeneration",
    parts=(("model.audio_tower.", "audio_encoder"), ("model.multi_modal_projector.", "projector"),
           ("model.language_model.", "language_model"), ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=lambda model, enc: model.model.multi_modal_projector(enc),
    body=body_for("input_features"),
    audio_token=AUDIO_TOKEN,
    feature_keys=("input_features",),
    end_token="</s>",
    long_audio_is_error=True,
    processor=_processor,
    features=_features,
)


def tiny(texts=None, hidden: int = 32, layers: int = 1, audio_hidden: int = 32, audio_layers: int = 1,
         window_s: int = 4, seed: int = 0, tokenizer=None):
    """(model, tokenizer, processor, feature extractor) of a random-weight VoxtralForConditionalGeneration,
    with a `window_s` window (50 tokens per 4 s window here; 375 per 30 s in the real model). `tokenizer`: a
    mistral-common tokenizer (`MistralCommonBackend`) to use instead of the small test one (then the window
    must be its audio chunk, 30 s for Voxtral's)."""
    from transformers import LlamaConfig, VoxtralConfig, VoxtralEncoderConfig, VoxtralForConditionalGeneration

    from slufit.models.lalm.testing import feature_extractor

    tokenizer = tokenizer or family_tokenizer(texts, SPECIAL_TOKENS, "</s>", "<pad>", CHAT_TEMPLATE)
    audio = VoxtralEncoderConfig(num_mel_bins=128, num_hidden_layers=audio_layers, num_attention_heads=2,
                                 hidden_size=audio_hidden, intermediate_size=4 * audio_hidden,
                                 max_source_positions=window_s * 50)
    text = LlamaConfig(**text_sizes(hidden, layers, len(tokenizer)), head_dim=hidden // 4,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                       bos_token_id=tokenizer.convert_tokens_to_ids("<s>"), tie_word_embeddings=False)
    config = VoxtralConfig(audio_config=audio.to_dict(), text_config=text.to_dict(),
                           audio_token_id=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN))
    torch.manual_seed(seed)
    model = VoxtralForConditionalGeneration(config).float()
    fe = feature_extractor(128, window_s)
    return model, tokenizer, _processor(fe, tokenizer), fe
