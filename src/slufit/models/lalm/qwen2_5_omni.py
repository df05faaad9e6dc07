"""Qwen2.5-Omni's thinker (the part that reads audio and writes text) through the LALM adapter.

Differences from Qwen2-Audio that matter here:
- the projector is the encoder's last layer (`audio_tower.proj`), so the encoder cache
  stores the output just before it (the layer is swapped for an identity while encoding);
- the language model takes 3-D (M-RoPE) positions; with audio and text only they are the
  plain running positions on all three axes (see get_rope_index), which the cached path
  passes explicitly;
- its processor also wants image and video processors (torchvision), so audio placeholders
  are expanded here with the same length rule its processor uses.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slufit.models.lalm.adapter import SAMPLE_RATE, Family
from slufit.models.lalm.tokenizer import CHAT_TEMPLATE  # noqa: F401 (a folder without a template gets this one)

MODELS = {"qwen2.5-omni-7b": "Qwen/Qwen2.5-Omni-7B", "qwen2.5-omni-3b": "Qwen/Qwen2.5-Omni-3B"}
SIZES = {"qwen2.5-omni-7b": "7B decoder + encoders (thinker)", "qwen2.5-omni-3b": "3B decoder + encoders (thinker)"}
# The thinker alone, or the full checkpoint (whose thinker is kept: text output; the speech generator is dropped).
MODEL_TYPES = ("qwen2_5_omni_thinker", "qwen2_5_omni")
FULL_CHECKPOINT = {"qwen2_5_omni": "Qwen2_5OmniForConditionalGeneration"}


def _output_lengths(feature_lengths: torch.Tensor) -> torch.Tensor:
    after_cnn = (feature_lengths - 1) // 2 + 1
    return (after_cnn - 2) // 2 + 1


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    features = adapter.feature_extractor(waves, sampling_rate=SAMPLE_RATE, padding="max_length",
                                         return_attention_mask=True, return_tensors="pt")
    token = adapter.family.audio_token
    counts = _output_lengths(features["attention_mask"].sum(-1)).tolist()
    expanded = []
    for prompt, n in zip(prompts, counts):
        if prompt.count(token) != 1:
            raise ValueError(f"expected one {token} in the prompt, found {prompt.count(token)}")
        expanded.append(prompt.replace(token, token * n))
    batch = dict(adapter.tokenizer(expanded, padding=True, return_tensors="pt", add_special_tokens=False))
    batch["input_features"] = features["input_features"]
    batch["feature_attention_mask"] = features["attention_mask"]
    return batch


def _encode(model: nn.Module, features: torch.Tensor, feature_mask: torch.Tensor) -> list[torch.Tensor]:
    tower = model.model.audio_tower
    proj = tower.proj
    tower.proj = nn.Identity()  # stop before the projector: it may be trained while the encoder is frozen
    try:
        dtype = tower.conv1.weight.dtype
        hidden = model.model.get_audio_features(features.to(tower.conv1.weight.device, dtype),
                                                feature_mask.to(tower.conv1.weight.device)).last_hidden_state
    finally:
        tower.proj = proj
    return list(torch.split(hidden, _output_lengths(feature_mask.sum(-1)).tolist()))


def _body(model: nn.Module, batch: dict, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
    if inputs_embeds is None:
        out = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          input_features=batch.get("input_features"),
                          feature_attention_mask=batch.get("feature_attention_mask"), use_cache=False)
    else:
        mask = batch["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        positions = positions.unsqueeze(0).expand(3, -1, -1)
        out = model.model(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=positions, use_cache=False)
    return out.last_hidden_state


FAMILY = Family(
    name="qwen2.5-omni-thinker",
    model_class="Qwen2_5OmniThinkerForConditionalGeneration",
    parts=(("model.audio_tower.proj.", "projector"), ("model.audio_tower.", "audio_encoder"),
           ("model.language_model.", "language_model"), ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=lambda model, enc: model.model.audio_tower.proj(enc),
    body=_body,
)
