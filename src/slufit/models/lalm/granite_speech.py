"""IBM Granite Speech (`GraniteSpeechForConditionalGeneration`) through the LALM adapter.

Its parts: a conformer CTC encoder (`model.encoder`; 80-bin log-mel frames stacked in pairs, 160 inputs,
100 Hz -> 50 Hz), a windowed Q-Former projector (`model.projector`: 3 queries per 15 encoder frames,
so 10 Hz) and a Granite decoder. One `<|audio|>` per projector output.

Quirks that matter here:
- its feature extractor (`GraniteSpeechFeatureExtractor`) computes the mel spectrogram with torchaudio,
  which must not be installed beside this torch; `GraniteMel` below is the same class with the same
  computation written in torch (`torch.stft` + the HTK mel filter bank, as torchaudio's `MelSpectrogram`
  defaults), so the real `GraniteSpeechProcessor` runs on it;
- the encoder attends within blocks of `context_size` (200) frames and its convolutions run across the
  padding of shorter clips in a batch, so an encoder output depends on what it was batched with: it is
  not cached per recording (`cacheable=False`), and a batched forward is not bit-equal to one-by-one;
- the hub checkpoints carry their own LoRA adapter for audio inputs (`has_lora_adapter`), which
  transformers turns on only when audio is given; slufit's LoRA is a separate peft wrapper (untested with
  the real checkpoint here: no hub access);
- no fixed window (the encoder reads any length); slufit caps recordings at 10 minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers.models.granite_speech.feature_extraction_granite_speech import GraniteSpeechFeatureExtractor

from slufit.models.lalm.common import body_for, family_tokenizer, text_sizes
from slufit.models.lalm.adapter import Family

AUDIO_TOKEN = "<|audio|>"
END = "<|end_of_text|>"
SPECIAL_TOKENS = [END, "<|start_of_role|>", "<|end_of_role|>", "<|tool_call|>", AUDIO_TOKEN]
SYSTEM = "You are Granite, developed by IBM. You are a helpful AI assistant."
# The system turn of the granite-speech-3.3 model card's example, sent with every prompt.
CARD_SYSTEM = ("Knowledge Cutoff Date: April 2024.\nToday's Date: April 9, 2025.\n"
               "You are Granite, developed by IBM. You are a helpful AI assistant")
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}<|start_of_role|>system<|end_of_role|>" + SYSTEM + END + "\n{% endif %}"
    "{% for message in messages %}<|start_of_role|>{{ message['role'] }}<|end_of_role|>"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}<|audio|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}" + END + "\n{% endfor %}"
    "{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{% endif %}"
)
MODELS = {"granite-speech-3.3-2b": "ibm-granite/granite-speech-3.3-2b",
          "granite-speech-3.3-8b": "ibm-granite/granite-speech-3.3-8b"}
# Nominal sizes, as the model names say (nothing was downloaded here to count them).
SIZES = {"granite-speech-3.3-2b": "2B decoder + conformer encoder", "granite-speech-3.3-8b": "8B decoder + conformer encoder"}
MODEL_TYPES = ("granite_speech",)
MAX_SECONDS = 600.0


class _MelSpectrogram(nn.Module):
    """torchaudio.transforms.MelSpectrogram's defaults (hann window, centred reflect padding, power 2,
    HTK mel scale, no filter normalisation), in torch."""

    def __init__(self, sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        fb = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                             max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm=None, mel_scale="htk")
        self.register_buffer("filters", torch.tensor(fb, dtype=torch.float32), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                          pad_mode="reflect", return_complex=True).abs() ** 2
        return (spec.transpose(-1, -2) @ self.filters).transpose(-1, -2)  # (batch, n_mels, frames)


class GraniteMel(GraniteSpeechFeatureExtractor):
    """GraniteSpeechFeatureExtractor without torchaudio: the same features, the same token counts."""

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 512, win_length: int = 400, hop_length: int = 160,
                 n_mels: int = 80, projector_window_size: int = 15, projector_downsample_rate: int = 5,
                 padding_value: float = 0.0, **kwargs) -> None:
        feature_size = kwargs.pop("feature_size", None) or n_mels
        kwargs.pop("melspec_kwargs", None)
        super(GraniteSpeechFeatureExtractor, self).__init__(feature_size=feature_size, sampling_rate=sampling_rate,
                                                            padding_value=padding_value, **kwargs)
        self.sampling_rate = sampling_rate
        self.melspec_kwargs = {"sample_rate": sampling_rate, "n_fft": n_fft, "win_length": win_length,
                               "hop_length": hop_length, "n_mels": n_mels}
        self.mel_filters = _MelSpectrogram(**self.melspec_kwargs)
        self.projector_window_size = projector_window_size
        self.projector_downsample_rate = projector_downsample_rate

    def __call__(self, audios, device: str | None = "cpu"):
        from transformers.feature_extraction_utils import BatchFeature

        batched, lengths = self._get_audios_and_audio_lengths(audios)
        features = self._extract_mel_spectrograms(batched, device=device)
        sizes = self._get_num_audio_features(lengths)
        mask = torch.arange(max(sizes)).view(1, -1) < torch.tensor(sizes).view(-1, 1)
        return BatchFeature(data={"input_features": features, "audio_embed_sizes": sizes, "input_features_mask": mask})

    def _extract_mel_spectrograms(self, audio: torch.Tensor, device="cpu") -> torch.Tensor:
        melspec = self.mel_filters.to(device) if device is not None else self.mel_filters
        audio = audio.to(device) if device is not None else audio
        bsz = audio.shape[0]
        with torch.no_grad():  # GraniteSpeechFeatureExtractor._extract_mel_spectrograms, line for line
            mel = melspec(audio.float())
            logmel = mel.transpose(-1, -2).clip_(min=1e-10).log10_()
            mx = logmel.amax(dim=(-2, -1), keepdim=True)
            logmel = torch.maximum(logmel, mx - 8.0).div_(4).add_(1)
            if logmel.shape[1] % 2 == 1:
                logmel = logmel[:, :-1]
            return logmel.reshape(bsz, -1, 2 * logmel.shape[-1])

    def to_dict(self) -> dict:
        out = super().to_dict()
        out.pop("mel_filters", None)
        out["feature_extractor_type"] = "GraniteSpeechFeatureExtractor"  # what the hub's config says
        return out


def load_feature_extractor(folder: str | Path) -> GraniteMel:
    import json

    config = json.loads((Path(folder) / "preprocessor_config.json").read_text())
    config.pop("feature_extractor_type", None)
    config.pop("processor_class", None)
    return GraniteMel(**config)


def _featurize(adapter, prompts: list[str], waves: list[np.ndarray]) -> dict:
    # GraniteSpeechProcessor's audio argument is `audio=`; it expands each <|audio|> by audio_embed_sizes.
    return dict(adapter.processor(text=prompts, audio=[torch.from_numpy(w) for w in waves], return_tensors="pt"))


def _encode(model: nn.Module, features: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Encoder outputs, one padded row per clip: they depend on the batch's padding, so the adapter never
    caches them (`cacheable=False`); tests use this to show that they do."""
    encoder = model.model.encoder
    return list(encoder(features.to(encoder.input_linear.weight.dtype)).last_hidden_state.unbind(0))


def _processor(feature_extractor, tokenizer):
    from transformers import GraniteSpeechProcessor

    return GraniteSpeechProcessor(audio_processor=feature_extractor, tokenizer=tokenizer,
                                  audio_token=AUDIO_TOKEN, chat_template=tokenizer.chat_template)


FAMILY = Family(
    name="granite-speech",
    model_class="GraniteSpeechForConditionalGeneration",
    parts=(("model.encoder.", "audio_encoder"), ("model.projector.", "projector"),
           ("model.language_model.", "language_model"), ("lm_head.", "language_model")),
    featurize=_featurize,
    encode=_encode,
    project=lambda model, enc: model.model.projector(enc),
    body=body_for("input_features", "input_features_mask"),
    audio_token=AUDIO_TOKEN,
    feature_keys=("input_features", "input_features_mask"),
    encoder="model.encoder",
    end_token=END,
    cacheable=False,
    window=lambda adapter: MAX_SECONDS,
    long_audio_is_error=True,
    processor=_processor,
    load_feature_extractor=load_feature_extractor,
    # The hub checkpoints' audio LoRA (`has_lora_adapter`), at the folder's top: transformers loads it as "default".
    audio_adapter=("default", ""),
    # The model card's prompt: `<|audio|>` in front of the text of a string turn (the template concatenates
    # `message['content']`), and its system turn, whose fixed date keeps the template from writing today's.
    audio_inline=AUDIO_TOKEN,
    system=CARD_SYSTEM,
)


def tiny(texts=None, hidden: int = 32, layers: int = 1, audio_hidden: int = 32, audio_layers: int = 2,
         seed: int = 0):
    """(model, tokenizer, processor, feature extractor) of a random-weight GraniteSpeechForConditionalGeneration
    with the real GraniteSpeechProcessor over GraniteMel."""
    from transformers import Blip2QFormerConfig, GraniteConfig, GraniteSpeechConfig, GraniteSpeechEncoderConfig
    from transformers import GraniteSpeechForConditionalGeneration

    tokenizer = family_tokenizer(texts, SPECIAL_TOKENS, END, END, CHAT_TEMPLATE)
    encoder = GraniteSpeechEncoderConfig(input_dim=160, num_layers=audio_layers, hidden_dim=audio_hidden,
                                         feedforward_mult=2, num_heads=2, dim_head=audio_hidden // 2, output_dim=8,
                                         context_size=200, max_pos_emb=512, conv_kernel_size=3, dropout=0.0)
    projector = Blip2QFormerConfig(hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=2 * hidden, encoder_hidden_size=audio_hidden,
                                   cross_attention_frequency=1, max_position_embeddings=64,
                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    text = GraniteConfig(**text_sizes(hidden, layers, len(tokenizer)), pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    config = GraniteSpeechConfig(text_config=text.to_dict(), encoder_config=encoder.to_dict(),
                                 projector_config=projector.to_dict(), has_lora_adapter=False,
                                 audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN))
    torch.manual_seed(seed)
    model = GraniteSpeechForConditionalGeneration(config).float()
    fe = GraniteMel()
    return model, tokenizer, _processor(fe, tokenizer), fe
