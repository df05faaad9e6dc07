"""Microsoft Phi-4-multimodal (`Phi4MultimodalForCausalLM`) through the LALM adapter.

Its parts: a conformer audio encoder (`model.embed_tokens_extend.audio_embed.encoder`: 80-bin log-mel
frames at 100 Hz, 8x time reduction, so 12.5 Hz), a two-layer speech projector (`up_proj_for_speech`,
`down_proj_for_speech`; the `*_for_vision_speech` pair is for audio beside an image and stays frozen),
a SigLIP image encoder (unused, frozen) and a Phi-4-mini decoder (`model.layers`, `lm_head`).

Quirks that matter here:
- the decoder's projections are fused (`qkv_proj`, `gate_up_proj`) and it does not live under a
  `language_model` module, so the family's own LoRA targets are `model.layers.*` projections;
- the hub checkpoint ships speech and vision LoRA adapters of its own; slufit's LoRA is a separate
  peft wrapper on the base weights (untested with the real checkpoint here: no hub access);
- its processor (`Phi4MultimodalProcessor`) cannot be built here: it requires a
  `Phi4MultimodalImageProcessor`, a torchvision-backed processor, and torchvision is not installable beside
  this torch (torchvision 0.29 needs torch >= 2.14). The audio placeholders are expanded here with the
  processor's rule (one `<|audio|>` per `audio_embed_sizes` entry, computed by the real
  `Phi4MultimodalFeatureExtractor`);
- its feature extractor returns `audio_attention_mask` only for batches of two or more clips, and even
  with the mask a clip's encoder output changes with the padding of a longer clip in its batch (the
  convolutional subsampling runs over the padding): encoder outputs are not cached per recording
  (`cacheable=False`; tests/test_families.py shows the difference);
- no fixed window; slufit caps recordings at 10 minutes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slufit.models.lalm.common import body_for, family_tokenizer
from slufit.models.lalm.adapter import SAMPLE_RATE, Family

AUDIO_TOKEN, IMAGE_TOKEN = "<|audio|>", "<|image|>"
END = "<|end|>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", END, IMAGE_TOKEN, AUDIO_TOKEN]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}<|audio|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
MODELS = {"phi-4-multimodal": "microsoft/Phi-4-multimodal-instruct"}
# Nominal size, as the model card gives it (nothing was downloaded here to count it).
SIZES = {"phi-4-multimodal": "5.6B (Phi-4-mini 3.8B decoder + audio and vision encoders)"}
MODEL_TYPES = ("phi4_multimodal",)
MAX_SECONDS = 600.0
SPEECH = "model.embed_tokens_extend.audio_embed."
FEATURE_KEYS = ("audio_input_features", "audio_attention_mask", "audio_embed_sizes")


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    features = adapter.feature_extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    sizes = features["audio_embed_sizes"].tolist()
    expanded = [adapter.family.expand_audio(p, n) for p, n in zip(prompts, sizes)]
    batch = dict(adapter.tokenizer(expanded, padding=True, return_tensors="pt", add_special_tokens=False))
    batch.update({k: features[k] for k in FEATURE_KEYS if k in features})
    return batch


def _encode(model: nn.Module, features: torch.Tensor, mask: torch.Tensor | None,
            sizes: torch.Tensor) -> list[torch.Tensor]:
    embed = model.model.embed_tokens_extend.audio_embed
    weight = embed.up_proj_for_speech.weight
    hidden = embed.encoder(features.to(weight.device, weight.dtype), None if mask is None else mask.to(weight.device))
    return [hidden[i, :n] for i, n in enumerate(sizes.tolist())]


def _project(model: nn.Module, enc: torch.Tensor) -> torch.Tensor:
    embed = model.model.embed_tokens_extend.audio_embed
    return embed.down_proj_for_speech(nn.functional.gelu(embed.up_proj_for_speech(enc)))


FAMILY = Family(
    name="phi-4-multimodal",
    model_class="Phi4MultimodalForCausalLM",
    parts=((SPEECH + "encoder.", "audio_encoder"), (SPEECH + "up_proj_for_speech.", "projector"),
           (SPEECH + "down_proj_for_speech.", "projector"), ("model.embed_tokens_extend.", "other"),
           ("model.", "language_model"), ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=_project,
    body=body_for(*FEATURE_KEYS),
    audio_token=AUDIO_TOKEN,
    feature_keys=FEATURE_KEYS,
    encoder="model.embed_tokens_extend.audio_embed.encoder",
    end_token=END,
    cacheable=False,
    window=lambda adapter: MAX_SECONDS,
    long_audio_is_error=True,
    lora_targets=r"model\.layers\.\d+\.(self_attn\.(qkv_proj|o_proj)|mlp\.(gate_up_proj|down_proj))",
    # The model card loads `speech-lora` for audio (`model.load_adapter(path, adapter_name="speech",
    # adapter_kwargs={"subfolder": "speech-lora"})`); slufit does, and keeps it on for speech batches only.
    audio_adapter=("speech", "speech-lora"),
    # Its tokenizer template concatenates `message['content']` as a string: `<|audio|>` goes in front of the text.
    audio_inline=AUDIO_TOKEN,
)


def tiny(texts=None, hidden: int = 32, layers: int = 1, audio_hidden: int = 32, audio_layers: int = 1, seed: int = 0):
    """(model, tokenizer, None, feature extractor) of a random-weight Phi4MultimodalForCausalLM."""
    from transformers import (Phi4MultimodalAudioConfig, Phi4MultimodalConfig, Phi4MultimodalForCausalLM,
                              Phi4MultimodalVisionConfig)
    from transformers.models.phi4_multimodal.feature_extraction_phi4_multimodal import Phi4MultimodalFeatureExtractor

    tokenizer = family_tokenizer(texts, SPECIAL_TOKENS, "<|endoftext|>", "<|endoftext|>", CHAT_TEMPLATE)
    ids = tokenizer.convert_tokens_to_ids
    vision = Phi4MultimodalVisionConfig(hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=28, crop_size=28, patch_size=14,
                                        image_token_id=ids(IMAGE_TOKEN))
    audio = Phi4MultimodalAudioConfig(hidden_size=audio_hidden, intermediate_size=2 * audio_hidden,
                                      num_blocks=audio_layers, num_attention_heads=2, ext_pw_out_channel=audio_hidden,
                                      depthwise_separable_out_channel=audio_hidden, nemo_conv_channels=audio_hidden,
                                      audio_token_id=ids(AUDIO_TOKEN))
    config = Phi4MultimodalConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, vision_config=vision.to_dict(), audio_config=audio.to_dict(),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.pad_token_id, eos_token_id=ids(END),
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, original_max_position_embeddings=4096,
        max_position_embeddings=4096)
    torch.manual_seed(seed)
    model = Phi4MultimodalForCausalLM(config).float()
    return model, tokenizer, None, Phi4MultimodalFeatureExtractor()
