"""Qwen3-Omni's thinker (`Qwen3OmniMoeThinkerForConditionalGeneration`: the part that reads audio and writes
text; the talker that speaks is dropped) through the LALM adapter.

Differences from Qwen2.5-Omni's thinker that matter here:
- the audio encoder downsamples by 8 with three 2-D convolutions over chunks of 100 mel frames (1 s), giving
  13 frames per full chunk (see `_output_lengths`, copied from its processor), and ends in two linear
  layers, `proj1` and `proj2`, the projector: the encoder cache stores the output before them;
- the decoder is a mixture of experts (48 layers, 128 experts, 8 active, in the 30B-A3B model); LoRA's
  default targets (attention and `gate/up/down_proj` under `language_model`) then also adapt every expert;
- there is no fixed window: the processor pads to the longest clip and the encoder attends within windows
  of `n_window_infer` frames, so slufit caps recordings at 10 minutes;
- as for Qwen2.5-Omni, its processor also wants image and video processors (torchvision), so the audio
  placeholders are expanded here with the processor's own length rule, and with audio and text only the
  M-RoPE positions are the running positions on all three axes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slufit.models.lalm.common import chatml_template, family_tokenizer, text_sizes
from slufit.models.lalm.adapter import SAMPLE_RATE, Family

AUDIO_TOKEN = "<|audio_pad|>"
AUDIO_START, AUDIO_END = "<|audio_start|>", "<|audio_end|>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", AUDIO_START, AUDIO_END, AUDIO_TOKEN,
                  "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
CHAT_TEMPLATE = chatml_template(AUDIO_START + AUDIO_TOKEN + AUDIO_END, system=None)
MODELS = {"qwen3-omni-30b-a3b": "Qwen/Qwen3-Omni-30B-A3B-Instruct"}
# Nominal sizes, as the model names say (nothing was downloaded here to count them).
SIZES = {"qwen3-omni-30b-a3b": "30B total, 3B active (MoE thinker; talker dropped)"}
# The thinker alone, or the full checkpoint (whose thinker is kept).
MODEL_TYPES = ("qwen3_omni_moe_thinker", "qwen3_omni_moe")
FULL_CHECKPOINT = {"qwen3_omni_moe": "Qwen3OmniMoeForConditionalGeneration"}
MAX_SECONDS = 600.0


def _output_lengths(feature_lengths: torch.Tensor, n_window: int = 50) -> torch.Tensor:
    """Qwen3OmniMoeProcessor's rule: encoder frames for a clip of `feature_lengths` mel frames."""
    chunk = n_window * 2
    rest = feature_lengths % chunk
    after = (rest - 1) // 2 + 1
    return ((after - 1) // 2 + 1 - 1) // 2 + 1 + (feature_lengths // chunk) * 13


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    # The processor's audio settings: pad to the longest clip, never truncate.
    features = adapter.feature_extractor(waves, sampling_rate=SAMPLE_RATE, padding=True, truncation=False,
                                         return_attention_mask=True, return_tensors="pt")
    n_window = adapter.model.config.audio_config.n_window
    counts = _output_lengths(features["attention_mask"].sum(-1), n_window).tolist()
    expanded = [adapter.family.expand_audio(p, n) for p, n in zip(prompts, counts)]
    batch = dict(adapter.tokenizer(expanded, padding=True, return_tensors="pt", add_special_tokens=False))
    batch["input_features"] = features["input_features"]
    batch["feature_attention_mask"] = features["attention_mask"]
    return batch


def _expand(prompt: str, token: str, n: int) -> str:
    if prompt.count(token) != 1:
        raise ValueError(f"expected one {token} in the prompt, found {prompt.count(token)}")
    return prompt.replace(token, token * n)


def _encode(model: nn.Module, features: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    tower = model.model.audio_tower
    saved = tower.proj1, tower.act, tower.proj2
    tower.proj1 = tower.act = tower.proj2 = nn.Identity()  # stop before the projector
    try:
        weight = tower.conv2d1.weight
        hidden = model.model.get_audio_features(features.to(weight.device, weight.dtype),
                                                mask.to(weight.device)).last_hidden_state
    finally:
        tower.proj1, tower.act, tower.proj2 = saved
    return list(torch.split(hidden, _output_lengths(mask.sum(-1), tower.n_window).tolist()))


def _project(model: nn.Module, enc: torch.Tensor) -> torch.Tensor:
    tower = model.model.audio_tower
    return tower.proj2(tower.act(tower.proj1(enc)))


def _body(model: nn.Module, batch: dict, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
    if inputs_embeds is None:
        out = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          input_features=batch.get("input_features"),
                          feature_attention_mask=batch.get("feature_attention_mask"), use_cache=False)
    else:
        mask = batch["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0).unsqueeze(0).expand(3, -1, -1)
        out = model.model(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=positions, use_cache=False)
    return out.last_hidden_state


FAMILY = Family(
    name="qwen3-omni-thinker",
    model_class="Qwen3OmniMoeThinkerForConditionalGeneration",
    parts=(("model.audio_tower.proj1.", "projector"), ("model.audio_tower.proj2.", "projector"),
           ("model.audio_tower.", "audio_encoder"), ("model.language_model.", "language_model"),
           ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=_project,
    body=_body,
    audio_token=AUDIO_TOKEN,
    expand=_expand,
    window=lambda adapter: MAX_SECONDS,
    long_audio_is_error=True,
)


def tiny(texts=None, hidden: int = 32, layers: int = 1, audio_hidden: int = 32, audio_layers: int = 1,
         experts: int = 4, seed: int = 0):
    """(model, tokenizer, None, feature extractor) of a random-weight Qwen3OmniMoeThinkerForConditionalGeneration."""
    from transformers import (Qwen3OmniMoeAudioEncoderConfig, Qwen3OmniMoeTextConfig, Qwen3OmniMoeThinkerConfig,
                              Qwen3OmniMoeThinkerForConditionalGeneration, Qwen3OmniMoeVisionEncoderConfig)

    from slufit.models.lalm.testing import feature_extractor

    tokenizer = family_tokenizer(texts, SPECIAL_TOKENS, "<|im_end|>", "<|endoftext|>", CHAT_TEMPLATE)
    ids = tokenizer.convert_tokens_to_ids
    audio = Qwen3OmniMoeAudioEncoderConfig(
        num_mel_bins=128, encoder_layers=audio_layers, encoder_attention_heads=2, encoder_ffn_dim=2 * audio_hidden,
        d_model=audio_hidden, output_dim=hidden, downsample_hidden_size=8, max_source_positions=1500)
    vision = Qwen3OmniMoeVisionEncoderConfig(depth=1, hidden_size=16, intermediate_size=16, num_heads=2,
                                             out_hidden_size=hidden, deepstack_visual_indexes=[0])
    head_dim = hidden // 4
    text = Qwen3OmniMoeTextConfig(
        **text_sizes(hidden, layers, len(tokenizer)), moe_intermediate_size=hidden, num_experts=experts,
        num_experts_per_tok=2, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_interleaved": True,
                         "mrope_section": [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]})
    config = Qwen3OmniMoeThinkerConfig(
        audio_config=audio.to_dict(), vision_config=vision.to_dict(), text_config=text.to_dict(),
        audio_token_id=ids(AUDIO_TOKEN), audio_start_token_id=ids(AUDIO_START), user_token_id=ids("<|im_start|>"),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    torch.manual_seed(seed)
    model = Qwen3OmniMoeThinkerForConditionalGeneration(config).float()
    return model, tokenizer, None, feature_extractor(128, 30)
