"""Qwen2-Audio (`Qwen2AudioForConditionalGeneration`), the study's model, through the LALM adapter.

Its parts: a Whisper-large-v3-style encoder (`model.audio_tower`, 128 mel bins, 30 s window, average-pooled to
25 Hz), a linear projector (`model.multi_modal_projector`) and a Qwen-7B decoder. Its processor
(`Qwen2AudioProcessor`) takes `audio=` and expands each `<|AUDIO|>` to one token per encoder frame.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from slufit.models.lalm.adapter import SAMPLE_RATE, Family
from slufit.models.lalm.tokenizer import CHAT_TEMPLATE  # noqa: F401 (a folder without a template gets this one)

MODELS = {"qwen2-audio-7b-instruct": "Qwen/Qwen2-Audio-7B-Instruct", "qwen2-audio-7b": "Qwen/Qwen2-Audio-7B"}
SIZES = {"qwen2-audio-7b-instruct": "8.4B (measured: benchmarks/gpu_qwen2_audio.py)", "qwen2-audio-7b": "8.4B"}
MODEL_TYPES = ("qwen2_audio",)


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    # The processor's audio argument is `audio=`: a wrong name (audios=, raw_speech=) is silently ignored.
    return dict(adapter.processor(text=prompts, audio=waves, sampling_rate=SAMPLE_RATE, padding=True,
                                  return_tensors="pt"))


def _encode(model: nn.Module, features: torch.Tensor, feature_mask: torch.Tensor) -> list[torch.Tensor]:
    """Qwen2AudioModel.forward's audio path, up to (not including) the projector."""
    from transformers.masking_utils import create_bidirectional_mask

    tower = model.model.audio_tower
    features = features.to(tower.device, tower.conv1.weight.dtype)
    feature_mask = feature_mask.to(tower.device)
    feat_lengths, out_lengths = tower._get_feat_extract_output_lengths(feature_mask.sum(-1))
    max_len = (features.shape[-1] - 2) // 2 + 1
    mask_2d = (torch.arange(max_len, device=tower.device)[None, :] < feat_lengths[:, None]).long()
    dummy = torch.zeros((features.shape[0], max_len, 1), dtype=features.dtype, device=tower.device)
    mask = create_bidirectional_mask(config=tower.config, inputs_embeds=dummy, attention_mask=mask_2d)
    hidden = tower(features, attention_mask=mask).last_hidden_state
    return [hidden[i, :n] for i, n in enumerate(out_lengths.tolist())]


def _body(model: nn.Module, batch: dict, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
    if inputs_embeds is not None:
        out = model.model(inputs_embeds=inputs_embeds, attention_mask=batch["attention_mask"], use_cache=False)
    else:
        out = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          input_features=batch.get("input_features"),
                          feature_attention_mask=batch.get("feature_attention_mask"), use_cache=False)
    return out.last_hidden_state


def _processor(feature_extractor, tokenizer):
    from transformers import Qwen2AudioProcessor

    return Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer,
                               chat_template=tokenizer.chat_template)


FAMILY = Family(
    name="qwen2-audio",
    model_class="Qwen2AudioForConditionalGeneration",
    parts=(("model.audio_tower.", "audio_encoder"), ("model.multi_modal_projector.", "projector"),
           ("model.language_model.", "language_model"), ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=lambda model, enc: model.model.multi_modal_projector(enc),
    body=_body,
    processor=_processor,
)
