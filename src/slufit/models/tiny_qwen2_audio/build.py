"""The `tiny` default: a real Qwen2AudioForConditionalGeneration, scaled down to train on a CPU.

- audio encoder: Whisper tiny's (d_model 384, 4 layers, 6 heads), initialised from pretrained
  weights (slufit.models.whisper_ct2), its position table cut to a 5 s window (250 positions,
  500 mel frames, as whisper.cpp's `audio_ctx` does), and kept frozen, so its outputs can be
  computed once per recording and cached;
- projector and a small Qwen2 language model (a few million parameters): trained here,
  first by `slufit pretrain` (slufit.models.tiny_qwen2_audio.pretrain), then by the fine-tuning schemes;
- tokenizer: byte-level BPE trained on the corpus text with Qwen2-Audio's special tokens and
  chat template (slufit.models.tokenizer); processor: Qwen2AudioProcessor over a
  WhisperFeatureExtractor(chunk_length=5).

The model and processor are saved as a normal transformers folder (`save_pretrained`), so the
Qwen2-Audio adapter loads the tiny default exactly like any LALM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from transformers import (PreTrainedTokenizerFast, Qwen2AudioConfig, Qwen2AudioEncoderConfig,
                          Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor, Qwen2Config,
                          WhisperFeatureExtractor)

from slufit.errors import SlufitError
from slufit.models import whisper_ct2
from slufit.models.tokenizer import AUDIO, build_tokenizer

SAMPLING_RATE = 16000
WHISPER_TINY_HEADS = 6  # not stored in the weights


@dataclass(frozen=True)
class TinySizes:
    """Sizes of the trained parts. The encoder's sizes come from the Whisper weights."""

    hidden: int = 256  # language model width
    layers: int = 4  # language model decoder layers
    heads: int = 4  # attention heads (head dim = hidden / heads)
    kv_heads: int = 2  # grouped-query attention, as Qwen2
    intermediate: int = 768  # MLP width
    vocab_size: int = 4000  # BPE vocabulary (bytes + merges + special tokens); fewer if the text runs out
    window_s: int = 5  # audio window in seconds: 50 encoder positions per second, longer clips are cut

    def __post_init__(self) -> None:
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise SlufitError(f"tiny: hidden ({self.hidden}) must divide by heads ({self.heads}), heads by kv_heads")
        if not 1 <= self.window_s <= 30:
            raise SlufitError(f"tiny: window_s must be 1..30 seconds (Whisper's window is 30), got {self.window_s}")


def build_tiny(texts: Iterable[str], sizes: TinySizes = TinySizes(), whisper: str | Path | None = None,
               seed: int = 0) -> tuple[Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor]:
    """A fresh tiny model (Whisper-initialised frozen encoder, random projector and LM) and its processor.

    `texts` train the tokenizer (the corpus text of all locales, plus prompts and targets);
    `whisper` is where the encoder weights come from (see `whisper_ct2.load_whisper_encoder_state`).
    """
    tokenizer = build_tokenizer(texts, vocab_size=sizes.vocab_size)
    positions = sizes.window_s * 50  # conv2 has stride 2 over 100 mel frames per second
    state = whisper_ct2.cut_positions(whisper_ct2.load_whisper_encoder_state(whisper), positions)
    audio_config = Qwen2AudioEncoderConfig(**whisper_ct2.encoder_dims(state), encoder_attention_heads=WHISPER_TINY_HEADS)
    text_config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=sizes.hidden, intermediate_size=sizes.intermediate,
        num_hidden_layers=sizes.layers, num_attention_heads=sizes.heads, num_key_value_heads=sizes.kv_heads,
        max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config = Qwen2AudioConfig(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(),
                              audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO))
    config.audio_config.model_type = "qwen2_audio_encoder"
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).float()
    result = model.model.audio_tower.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys  # strict=True raises first; kept as the contract
    freeze_audio_encoder(model)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    feature_extractor = WhisperFeatureExtractor(feature_size=audio_config.num_mel_bins, sampling_rate=SAMPLING_RATE,
                                                chunk_length=sizes.window_s)
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer,
                                    chat_template=tokenizer.chat_template)
    return model, processor


def freeze_audio_encoder(model: Qwen2AudioForConditionalGeneration) -> None:
    """The tiny default's encoder stays as Whisper trained it (and so its outputs can be cached)."""
    model.model.audio_tower.requires_grad_(False)
    model.model.audio_tower.eval()


def save_tiny(model: Qwen2AudioForConditionalGeneration, processor: Qwen2AudioProcessor, out_dir: Path) -> None:
    """A transformers folder (config, safetensors, processor, tokenizer) that `load_tiny` and the adapter read.

    Written into a temporary sibling folder and renamed, so a crash never leaves half a model.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def load_tiny(path: str | Path) -> tuple[Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor]:
    """Load a saved tiny model (encoder frozen) and its processor."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise SlufitError(f"{path}: not a saved tiny model (no config.json)")
    model = Qwen2AudioForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    processor = Qwen2AudioProcessor.from_pretrained(path)
    freeze_audio_encoder(model)
    return model, processor


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def encode_audio(model: Qwen2AudioForConditionalGeneration, input_features: torch.Tensor,
                 feature_attention_mask: torch.Tensor, trim: bool = True) -> list[torch.Tensor]:
    """Audio encoder outputs per clip, [audio tokens, d_model], as Qwen2AudioModel computes them; the projector
    is not applied (it is trained), so these are what a frozen encoder's cache holds. The shared Whisper ears
    code does the work (slufit.models.ears.encode_frames, with its trimming of padded frames)."""
    from slufit.models.ears import encode_frames

    return encode_frames(model.model.audio_tower, input_features, feature_attention_mask, trim=trim)
