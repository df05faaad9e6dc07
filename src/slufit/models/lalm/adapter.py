"""The shared transformers adapter: any LALM family (`Family`) as an SLUModel.

One prompt for both modalities, so that what is learnt from text carries over to speech; for
Qwen2-Audio, rendered by its chat template:

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>
    <|im_start|>user\\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\\n<instruction><|im_end|>      (speech item)
    <|im_start|>user\\nTranscript: <text>\\n<instruction><|im_end|>                                  (text item)
    <|im_start|>assistant\\n<target><|im_end|>

Each family renders the same two messages through its own checkpoint's chat template; the instruction
and target come from slufit.target. Labels are -100 everywhere but the target and its closing end token.
Text batches never touch the audio encoder.

A model family (`Family`) says where the audio encoder, projector and language model
live in the transformers class, how audio becomes features and prompt tokens, and how
encoder outputs become the language model's input. Training forward passes go through
`LALMModule.forward` (so DDP/FSDP wrappers see them); generation uses the transformers
class's own `generate` with its own audio path, which the cached path is tested against.

The families (one module each beside this one) import this module; this module imports none of them:
`slufit.models.lalm.families` holds the literal dict of families and picks one for a model.
"""

from __future__ import annotations

import json
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationConfig

from slufit.errors import SlufitError
from slufit.files import write_json
from slufit.models.base import SLUItem
from slufit.models.lalm import builtin_adapters
from slufit.models.ears.encoder_cache import EncoderCache, encoder_identity, recording_key
from slufit.target import TRANSCRIBE, format_target, instruction, transcript_prefix

SAMPLE_RATE = 16000
IGNORE = -100
MODEL_INFO = "slufit_model.json"
# ChatML's end of a turn and end of text (Qwen-style LMs): the default end token, and a stop token wherever the
# vocabulary has it.
IM_END, ENDOFTEXT = "<|im_end|>", "<|endoftext|>"
# LoRA on the language model's attention and MLP projections only: the audio encoder
# uses the same projection names, and a plain list would put adapters there too.
DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": DEFAULT_LORA_TARGETS}


@dataclass(frozen=True)
class Family:
    """What differs between LALM classes; everything else is shared."""

    name: str
    model_class: str  # transformers class name
    # Parameter-name prefixes (of the transformers model) of each part; the first match wins,
    # so a more specific prefix (a projector inside the encoder) comes first. Other parameters
    # (e.g. Omni's vision tower) stay frozen.
    parts: tuple[tuple[str, str], ...]
    # (adapter, prompts, waves) -> tokenizer/processor output with input_ids, attention_mask and the
    # feature_keys below (audio placeholders expanded).
    featurize: Callable[["LALMAdapter", list[str], list[np.ndarray]], dict[str, torch.Tensor]]
    # (model, *the batch's feature_keys in order) -> per-audio encoder outputs before the projector.
    encode: Callable[[nn.Module, torch.Tensor, torch.Tensor], list[torch.Tensor]]
    # (model, encoder output) -> language-model embeddings.
    project: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    # (model, batch without labels, inputs_embeds or None) -> last hidden states.
    body: Callable[[nn.Module, dict[str, torch.Tensor], torch.Tensor | None], torch.Tensor]
    audio_token: str = "<|AUDIO|>"
    # The batch keys of the audio features (features first, then e.g. their mask; a key may be absent, then
    # None); `encode` gets them in this order. Every row of each is one recording.
    feature_keys: tuple[str, ...] = ("input_features", "feature_attention_mask")
    # Attribute path of the audio encoder in the transformers model (its forward is what text batches never run).
    encoder: str = "model.audio_tower"
    # The token that closes the assistant turn: the target ends with it and generation stops at it.
    end_token: str = IM_END
    # (prompt with one audio_token, frames) -> the prompt with the placeholder expanded as the processor does.
    expand: Callable[[str, str, int], str] | None = None
    # False where an encoder output depends on the rest of the batch (Granite's and Phi-4's run over the
    # padding), so it must not be cached per recording.
    cacheable: bool = True
    # (adapter) -> seconds of audio the model reads per recording; longer audio is refused (new families) or,
    # for the two original families, cut off with a warning.
    window: Callable[["LALMAdapter"], float] | None = None
    long_audio_is_error: bool = False
    # (feature_extractor, tokenizer) -> the transformers processor the family featurizes with, or None.
    processor: Callable[[Any, Any], Any] | None = None
    # (folder) -> the feature extractor saved in it, for families whose extractor AutoFeatureExtractor cannot
    # build here (Granite's needs torchaudio).
    load_feature_extractor: Callable[[Path], Any] | None = None
    # The default LoRA targets (a regex over module names): the language model's projections only.
    lora_targets: str = DEFAULT_LORA_TARGETS
    # The checkpoint's own adapter for audio inputs, (the name it is loaded under, its subfolder in the checkpoint;
    # "" where transformers loads it from the folder itself): active for speech batches only (builtin_adapters).
    audio_adapter: tuple[str, str] | None = None
    # How the checkpoint's chat template takes a turn: None, list-of-parts content ({"type": "audio"} and
    # {"type": "text"} parts: Qwen2-Audio, the Omni thinkers, Voxtral); or string content with this audio
    # placeholder written in front of the text, as the model card does (Granite's and Phi-4's templates concatenate
    # `message['content']` as a string and fail on a list; Audio Flamingo 3's tokenizer template too).
    audio_inline: str | None = None
    # A system turn to send, where the template would otherwise write one that changes (Granite's writes today's
    # date); None leaves the template's own default.
    system: str | None = None
    # (adapter, waves) -> the batch's audio features alone, for prompts that arrive as token ids with their audio
    # tokens already placed (Voxtral through mistral-common).
    features: Callable[["LALMAdapter", list[np.ndarray]], dict[str, torch.Tensor]] | None = None

    def messages(self, text: str, audio: Path | None) -> list[dict]:
        """A user turn holding `text` (and the recording, when `audio` is given), and the family's system turn."""
        if self.audio_inline is not None:  # string content, the placeholder written into it as the card does
            content: str | list[dict] = (self.audio_inline if audio is not None else "") + text
        else:
            # "audio" is the key Hugging Face templates test for; "path" the one mistral-common's wrapper reads.
            content = ([{"type": "audio", "audio": str(audio), "path": str(audio)}] if audio is not None else []) + [
                {"type": "text", "text": text}]
        system = [{"role": "system", "content": self.system}] if self.system is not None else []
        return system + [{"role": "user", "content": content}]

    def encoder_of(self, model: nn.Module) -> nn.Module:
        module = model
        for attr in self.encoder.split("."):
            module = getattr(module, attr)
        return module

    def expand_audio(self, prompt: str, n: int) -> str:
        if self.expand is not None:
            return self.expand(prompt, self.audio_token, n)
        return prompt.replace(self.audio_token, self.audio_token * n, 1)


def _audio_token_id(config) -> int:
    """The audio placeholder's id: `audio_token_id` in most configs, `audio_token_index` in some."""
    for holder in (config, getattr(config, "audio_config", None)):  # Phi-4-multimodal: in its audio_config
        for key in ("audio_token_id", "audio_token_index"):
            if getattr(holder, key, None) is not None:
                return getattr(holder, key)
    raise SlufitError(f"{type(config).__name__} names no audio token id")


# ---------------------------------------------------------------- audio


def load_wave(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples: non-16 kHz audio is resampled, never silently misread."""
    from slufit.data.audio import load_audio

    return load_audio(path)


# ---------------------------------------------------------------- the module


class LALMModule(nn.Module):
    """The trainable torch module: `forward(**batch)` returns the loss over target tokens.

    `net` is the transformers model, or the peft model wrapping it.
    """

    def __init__(self, net: nn.Module, family: Family, audio_adapter: str | None = None,
                 lora_name: str | None = None) -> None:
        super().__init__()
        self.net = net
        self.family = family
        self.cache: EncoderCache | None = None
        self.audio_adapter = audio_adapter  # the checkpoint's audio adapter, where one is loaded
        self.lora_name = lora_name  # slufit's LoRA adapter, where there is one

    def use_modality(self, speech: bool) -> None:
        """The checkpoint's audio adapter on for speech and off for text, slufit's LoRA on for both (a no-op for
        a model without an audio adapter)."""
        if self.audio_adapter is not None:
            names = ([self.audio_adapter] if speech else []) + ([self.lora_name] if self.lora_name else [])
            builtin_adapters.activate(self.hf, names)

    @property
    def hf(self) -> nn.Module:
        """The transformers model (LoRA layers, if any, are injected into it in place)."""
        return self.net.get_base_model() if hasattr(self.net, "get_base_model") else self.net

    def forward(self, input_ids, attention_mask, labels, audio_keys=None, **features) -> torch.Tensor:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, **features}
        embeds = None
        if audio_keys is not None and not features and self.cache is None:
            raise RuntimeError("this speech batch was collated from the encoder cache, which is now off "
                               "(audio encoder unfrozen?); collate the batch again")
        if self.cache is not None and audio_keys is not None:
            embeds = self.merged_embeddings(input_ids, features, audio_keys)
        self.use_modality(speech=audio_keys is not None)  # every speech batch carries audio_keys
        hidden = self.family.body(self.hf, batch, embeds)
        # Only positions that predict a target token go through the LM head: the prompt never counts,
        # and a 150k-word head over every audio frame would dominate memory.
        shift_labels = labels[:, 1:]
        keep = shift_labels != IGNORE
        logits = self.hf.lm_head(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), shift_labels[keep])

    def merged_embeddings(self, input_ids, features: dict[str, torch.Tensor], audio_keys) -> torch.Tensor:
        """Token embeddings with each <|AUDIO|> run replaced by its audio's projected encoder output,
        as the transformers forward does, with the frozen encoder's outputs taken from the cache."""
        hf = self.hf
        outputs: list[torch.Tensor | None] = [self.cache.get(int(k)) for k in audio_keys.tolist()]
        missing = [i for i, out in enumerate(outputs) if out is None]
        if missing and not features:
            raise RuntimeError(f"{len(missing)} recordings left the encoder cache between collate and loss "
                               "(was set_trainable called in between?); collate the batch again")
        if missing:
            tower = self.family.encoder_of(hf)
            was_training = tower.training
            tower.eval()  # a cached output must not depend on dropout drawn when it was computed
            rows = [features[k][missing] if features.get(k) is not None else None for k in self.family.feature_keys]
            try:
                with torch.no_grad():
                    computed = self.family.encode(hf, *rows)
            finally:
                tower.train(was_training)
            for i, out in zip(missing, computed):
                self.cache.put(int(audio_keys[i]), out)
                outputs[i] = out
        embeds = hf.get_input_embeddings()(input_ids)
        audio = torch.cat([o.to(embeds.device) for o in outputs])
        audio = self.family.project(hf, audio.to(embeds.dtype))
        mask = (input_ids == _audio_token_id(hf.config)).unsqueeze(-1)
        if int(mask.sum()) != audio.shape[0]:
            raise RuntimeError(f"{int(mask.sum())} audio tokens but {audio.shape[0]} audio features")
        return embeds.masked_scatter(mask.to(embeds.device), audio.to(embeds.dtype))


# ---------------------------------------------------------------- the adapter


@dataclass
class LALMAdapter:
    """An SLUModel over a transformers LALM. Build it with `slufit.models.registry.load_model`,
    or directly from a model, its family and its processor pieces
    (`LALMAdapter(model, tokenizer, family=slufit.models.lalm.families.family_for(model), ...)`)."""

    model: nn.Module  # the transformers model (not peft-wrapped)
    tokenizer: Any
    family: Family | None = None  # required; a keyword so that it reads as what it is
    processor: Any = None  # Qwen2AudioProcessor; None for families that featurize themselves
    feature_extractor: Any = None
    transcript_first: bool = False
    # Transcript-first training only: this share of the text items (a fixed subset, by example id) is asked
    # without its transcript in the prompt, so the labels are learnt from the transcript the model writes
    # itself, as it must for speech (issue 8). Evaluation prompts are never blind.
    blind_text: float = 0.0
    lora: dict | None = None
    # Where the base weights come from (hub id or folder), when known: a LoRA save then stores
    # only the adapter; otherwise the base is saved too.
    base_name: str | None = None
    cache_dir: str | None = None  # disk folder for the encoder cache (memory only when None)
    use_encoder_cache: bool = True
    # Parts that stay frozen whatever set_trainable asks (kept in a saved model's slufit_model.json).
    always_frozen: tuple[str, ...] = ()
    module: LALMModule = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.family, Family):
            raise SlufitError(f"LALMAdapter needs family= (slufit.models.lalm.families.family_for(model) picks the "
                              f"one of a {type(self.model).__name__})")
        if self.feature_extractor is None and self.processor is not None:
            self.feature_extractor = self.processor.feature_extractor
        self.tokenizer.padding_side = "left"
        if self.processor is not None:
            self.processor.tokenizer.padding_side = "left"
        net = self.model
        # The checkpoint's own adapters (Granite's audio LoRA, Phi-4's speech-lora) are part of the model, not
        # slufit's LoRA: they stay whether slufit fine-tunes fully or adds its own LoRA beside them.
        builtin = builtin_adapters.loaded(self.model)
        audio = self.family.audio_adapter[0] if self.family.audio_adapter else None
        lora_name = None
        if self.lora is not None:
            lora_name = builtin_adapters.SLUFIT if builtin else "default"
            net = _apply_lora(self.model, self.lora, self.family.lora_targets, lora_name)
        self.module = LALMModule(net, self.family, audio_adapter=audio if audio in builtin else None,
                                 lora_name=lora_name)
        self._trained_parts: set[str] = set()
        # Full fine-tuning trains everything; LoRA only its adapters (set_trainable changes either).
        full = self.lora is None
        self.set_trainable(audio_encoder=full, projector=full, language_model=True)

    # -- prompts and batches

    @property
    def window_s(self) -> float:
        if self.family.window is not None:
            return self.family.window(self)
        return self.feature_extractor.n_samples / SAMPLE_RATE

    def prompt(self, item: SLUItem, task: str | None = None, blind: bool = False) -> str | list[int]:
        """The rendered prompt; token ids for a mistral-common tokenizer (Voxtral's `MistralCommonBackend`), whose
        control tokens exist only as ids (as text, "[INST]" is six ordinary tokens) and whose own request API
        places the audio tokens."""
        messages = self.messages(item, task, blind)
        if is_mistral_common(self.tokenizer):
            return self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def messages(self, item: SLUItem, task: str | None = None, blind: bool = False) -> list[dict]:
        """The chat messages of an item, in the form the family's checkpoint template takes (`Family.messages`)."""
        task = task or instruction(self.transcript_first)
        text = task if item.modality == "speech" or blind else f"Transcript: {item.example.text}\n{task}"
        return self.family.messages(text, item.audio_path if item.modality == "speech" else None)

    def target(self, item: SLUItem) -> str:
        return format_target(item.example, self.transcript_first) + self.family.end_token

    def collate(self, items: Sequence[SLUItem], with_targets: bool = True) -> dict[str, torch.Tensor]:
        """A training batch (with targets), or a generation batch (without; always with audio features,
        since generation runs the transformers class's own audio path)."""
        if not with_targets:
            return self._batch(items, [self.prompt(item) for item in items], None, from_cache=False)
        prompts = [self.prompt(item, blind=self._blind(item)) for item in items]
        return self._batch(items, prompts, [self.target(item) for item in items])

    def _blind(self, item: SLUItem) -> bool:
        if not (self.transcript_first and self.blind_text > 0 and item.modality == "text"):
            return False
        return zlib.crc32(item.example.id.encode()) % 10000 < self.blind_text * 10000

    def collate_rehearsal(self, items: Sequence[SLUItem]) -> dict[str, torch.Tensor]:
        """Speech -> transcript batches (the tiny default's pretraining objective, same prompt), for
        rehearsal stages that keep the model reading audio while it learns the SLU task from text."""
        if self.transcript_first:
            # The SLU prompt itself, and as target only the transcript the SLU target opens with
            # ('{"transcript": "..."', no end token): the model keeps transcribing speech in the very
            # place where, from text items, it has learnt to read the labels off the transcript.
            prompts = [self.prompt(item) for item in items]
            return self._batch(items, prompts, [transcript_prefix(item.example.text) for item in items])
        prompts = [self.prompt(item, TRANSCRIBE) for item in items]
        return self._batch(items, prompts, [item.example.text + self.family.end_token for item in items])

    def _batch(self, items: Sequence[SLUItem], prompts: list[str], targets: list[str] | None,
               from_cache: bool = True) -> dict:
        modalities = {item.modality for item in items}
        if len(modalities) != 1:
            raise ValueError(f"a batch holds one modality, got {sorted(modalities)}")
        if prompts and not isinstance(prompts[0], str):
            return self._id_batch(items, prompts, targets, from_cache)
        texts = [p + t for p, t in zip(prompts, targets)] if targets is not None else prompts
        if modalities == {"speech"}:
            keys = [recording_key(item.audio_path) for item in items]
            cache = self.module.cache
            cached = [cache.peek(k) for k in keys] if cache is not None and from_cache else [None]
            if all(c is not None for c in cached):
                # Every recording's encoder output is cached: skip reading audio and computing log-mel
                # features (as costly as a GPU step for a 7B model); expand placeholders as the processor does.
                texts = [self.family.expand_audio(t, len(c)) for t, c in zip(texts, cached)]
                batch = dict(self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False))
            else:
                batch = self.family.featurize(self, texts, [self._wave(item.audio_path) for item in items])
            batch["audio_keys"] = torch.tensor(keys)
        else:
            batch = dict(self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False))
        keep = _BATCH_KEYS | set(self.family.feature_keys)
        batch = {k: v for k, v in batch.items() if k in keep}
        if targets is not None:
            batch["labels"] = self._labels(batch["input_ids"], targets)
        return batch

    def _id_batch(self, items: Sequence[SLUItem], prompts: list[list[int]], targets: list[str] | None,
                  from_cache: bool) -> dict:
        """A batch from prompts already in token ids (audio tokens placed): targets encoded after them, rows padded
        on the left, labels on the target ids; audio features from the family's `features`."""
        pad = self.tokenizer.pad_token_id
        tails = [self._target_ids(t) for t in targets] if targets is not None else [[] for _ in prompts]
        rows = [p + t for p, t in zip(prompts, tails)]
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        batch = {"input_ids": input_ids,
                 "attention_mask": torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])}
        if items[0].modality == "speech":
            keys = [recording_key(item.audio_path) for item in items]
            cache = self.module.cache
            cached = [cache.peek(k) for k in keys] if cache is not None and from_cache else [None]
            if not all(c is not None for c in cached):
                batch.update(self.family.features(self, [self._wave(item.audio_path) for item in items]))
            batch["audio_keys"] = torch.tensor(keys)
        if targets is not None:
            labels = torch.full_like(input_ids, IGNORE)
            for row, tail in enumerate(tails):
                labels[row, width - len(tail):] = torch.tensor(tail)
            batch["labels"] = labels
        return batch

    def _target_ids(self, target: str) -> list[int]:
        """A target's ids, its closing end token as the token itself (not its spelling encoded as text)."""
        end = self.family.end_token
        if target.endswith(end):
            return (self.tokenizer.encode(target[: -len(end)], add_special_tokens=False)
                    + [self.tokenizer.convert_tokens_to_ids(end)])
        return self.tokenizer.encode(target, add_special_tokens=False)

    def _labels(self, input_ids: torch.Tensor, targets: list[str]) -> torch.Tensor:
        """-100 everywhere but the last tokens of each (left-padded) row, which must be the target."""
        labels = torch.full_like(input_ids, IGNORE)
        for row, target in enumerate(targets):
            ids = self.tokenizer(target, add_special_tokens=False)["input_ids"]
            n = len(ids)
            if input_ids[row, -n:].tolist() != ids:  # the prompt/target boundary merged into one token
                raise RuntimeError(f"target tokens differ inside the prompt+target sequence: {target!r}")
            labels[row, -n:] = input_ids[row, -n:]
        return labels

    def _wave(self, path: Path) -> np.ndarray:
        rate = getattr(self.feature_extractor, "sampling_rate", SAMPLE_RATE)
        if rate != SAMPLE_RATE:  # a feature extractor set up for another rate would misread 16 kHz samples
            raise SlufitError(f"{path}: {self.family.name}'s feature extractor expects {rate} Hz audio, but slufit "
                              f"reads every recording at {SAMPLE_RATE} Hz; use the model's 16 kHz feature extractor")
        wave = load_wave(path)
        if len(wave) > self.window_s * SAMPLE_RATE and self.family.long_audio_is_error:
            raise SlufitError(f"{path}: {len(wave) / SAMPLE_RATE:.1f} s is longer than {self.family.name}'s "
                              f"{self.window_s:g} s audio window (as configured here); trim or split the recording")
        if len(wave) > self.window_s * SAMPLE_RATE:
            warnings.warn(f"{path}: {len(wave) / SAMPLE_RATE:.1f} s is longer than the model's "
                          f"{self.window_s:.0f} s audio window; the rest is cut off", stacklevel=3)
        return wave

    # -- training

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module(**batch)

    def set_trainable(self, audio_encoder: bool, projector: bool, language_model: bool) -> None:
        wanted = {"audio_encoder": audio_encoder, "projector": projector, "language_model": language_model}
        wanted = {part: on and part not in self.always_frozen for part, on in wanted.items()}
        audio_encoder = wanted["audio_encoder"]
        lora = self.module.lora_name
        for name, param in self.module.hf.named_parameters():
            part = self.part_of(name)
            if lora is not None and part == "language_model":
                param.requires_grad = wanted["language_model"] and builtin_adapters.is_adapter_parameter(name, lora)
            else:
                param.requires_grad = wanted.get(part, False)
        self._trained_parts |= {part for part, on in wanted.items() if on}
        # A frozen encoder gives the same output for a recording every time: compute it once.
        if self.use_encoder_cache and self.family.cacheable and not audio_encoder:
            encoder = [(n, p) for n, p in self.module.hf.named_parameters() if self.part_of(n) == "audio_encoder"]
            config = getattr(self.family.encoder_of(self.module.hf), "config", None)
            identity = encoder_identity(encoder, config=config, extra=self.family.name)
            if self.module.cache is None or self.module.cache.identity != identity:
                self.module.cache = EncoderCache(identity, self.cache_dir)
        else:
            self.module.cache = None

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in the backward pass. Classes that do not support it as a whole (Granite
        Speech) get it on their language model, where nearly all activations are."""
        hf = self.module.hf
        kwargs = {"use_reentrant": False}
        if hf.supports_gradient_checkpointing:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        else:
            hf.model.language_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        hf.config.use_cache = False

    def part_of(self, param_name: str) -> str:
        for prefix, part in self.family.parts:
            if param_name.startswith(prefix):
                return part
        return "other"

    # -- generation

    @torch.no_grad()
    def generate(self, items: Sequence[SLUItem], num_beams: int = 1, max_new_tokens: int = 128) -> list[str]:
        batch = self.collate(items, with_targets=False)
        batch.pop("audio_keys", None)
        hf = self.module.hf
        device = next(hf.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        was_training = self.module.training
        self.module.eval()
        # slufit's own settings, whatever the checkpoint's generation_config.json says: transformers fills every
        # field a call leaves unset from the model's generation_config (a hub one carries repetition penalties,
        # sampling, top-k/p), so the model's is swapped for a bare one while generating, and every field that
        # changes the output is also passed explicitly.
        hub_config = hf.generation_config
        hf.generation_config = GenerationConfig()
        speech = items[0].modality == "speech"
        self.module.use_modality(speech)
        # Granite Speech's generate switches its adapter itself, through calls that refuse peft < 0.22; the
        # switch is already set for this modality, so it is told there is nothing to switch.
        peft_flag = getattr(hf, "_hf_peft_config_loaded", False)
        hf._hf_peft_config_loaded = False
        try:
            out = hf.generate(**batch, **generation_settings(num_beams, max_new_tokens), eos_token_id=self._stop_ids(),
                              pad_token_id=self.tokenizer.pad_token_id)
        finally:
            hf.generation_config = hub_config
            hf._hf_peft_config_loaded = peft_flag
            self.module.train(was_training)
        return self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)

    def _stop_ids(self) -> list[int]:
        """The end of the assistant turn, and the tokenizer's own end-of-sequence tokens."""
        stop = []
        for token in (self.family.end_token, ENDOFTEXT, self.tokenizer.eos_token):
            if token is not None and token in self.tokenizer.get_vocab():
                stop.append(self.tokenizer.convert_tokens_to_ids(token))
        return sorted(set(stop))

    # -- save and load

    def save(self, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        hf = self.module.hf
        info: dict[str, Any] = {"family": self.family.name, "transcript_first": self.transcript_first,
                                "lora": self.lora, "base": None, "always_frozen": list(self.always_frozen)}
        if self.lora is not None:
            self.module.net.save_pretrained(out_dir / "adapter")  # slufit's LoRA weights only (safetensors)
            extra = {n: p.detach().cpu().contiguous() for n, p in hf.named_parameters()
                     if self.part_of(n) in self._trained_parts - {"language_model"}}
            if extra:
                from safetensors.torch import save_file
                save_file(extra, str(out_dir / "non_lora.safetensors"))
            if self.base_name is not None:
                info["base"] = self.base_name
            else:  # built in memory: nothing to reload the base from, so keep it here
                _save_base(self.module.net, out_dir / "base")
                info["base"] = "base"
        elif builtin_adapters.loaded(hf):  # the base and the checkpoint's own adapters, where it kept them
            subfolders = dict([self.family.audio_adapter]) if self.family.audio_adapter else {}
            builtin_adapters.save_model(hf, out_dir / "model", subfolders)
        else:
            hf.save_pretrained(out_dir / "model", safe_serialization=True)
        self.tokenizer.save_pretrained(out_dir / "tokenizer")
        self.feature_extractor.save_pretrained(out_dir / "tokenizer")
        write_json(out_dir / MODEL_INFO, info)


def is_mistral_common(tokenizer) -> bool:
    """Whether `tokenizer` is transformers' wrapper of a mistral-common tokenizer (Voxtral's tekken)."""
    return type(tokenizer).__name__ == "MistralCommonBackend"


def generation_settings(num_beams: int, max_new_tokens: int) -> dict[str, Any]:
    """Greedy or beam search, and every generation field that would change the output at its neutral value
    (transformers' own defaults): no sampling, no repetition or length penalty, no n-gram blocking, no forced or
    suppressed tokens, no minimum length."""
    return dict(num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                temperature=1.0, top_k=50, top_p=1.0, min_p=None, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
                repetition_penalty=1.0, encoder_repetition_penalty=1.0, length_penalty=1.0, no_repeat_ngram_size=0,
                encoder_no_repeat_ngram_size=0, bad_words_ids=None, suppress_tokens=None, begin_suppress_tokens=None,
                forced_bos_token_id=None, forced_eos_token_id=None, exponential_decay_length_penalty=None,
                sequence_bias=None, min_length=0, min_new_tokens=None, early_stopping=False, num_beam_groups=1,
                diversity_penalty=0.0, num_return_sequences=1, renormalize_logits=False)


_BATCH_KEYS = {"input_ids", "attention_mask", "input_features", "feature_attention_mask", "audio_keys"}


def _apply_lora(model: nn.Module, options: dict, default_targets: str = DEFAULT_LORA_TARGETS,
                adapter_name: str = "default") -> nn.Module:
    from peft import LoraConfig, get_peft_model

    unknown = set(options) - set(LORA_DEFAULTS)
    if unknown:
        raise SlufitError(f"unknown LoRA option(s) {sorted(unknown)}; known: {sorted(LORA_DEFAULTS)}")
    o = {**LORA_DEFAULTS, "target_modules": default_targets, **options}
    targets = o["target_modules"]
    if isinstance(targets, str):
        # Resolved here to the full names it matches (peft's own rule, re.fullmatch): given the regex, peft
        # rewrites it for some classes (Qwen3-Omni's thinker) into bare suffixes that also match the encoder.
        import re

        targets = [name for name, _ in model.named_modules() if re.fullmatch(targets, name)]
        if not targets:
            raise SlufitError(f"LoRA target_modules {o['target_modules']!r} matches no module of {type(model).__name__}")
    config = LoraConfig(r=o["r"], lora_alpha=o["alpha"], lora_dropout=o["dropout"], target_modules=targets,
                        bias="none")
    return get_peft_model(model, config, adapter_name=adapter_name)


def _save_base(peft_model, out_dir: Path) -> None:
    """Save the transformers model without LoRA layers: the base a LoRA adapter applies to."""
    hf = peft_model.get_base_model()
    if builtin_adapters.loaded(hf):
        raise SlufitError("a LoRA model whose checkpoint brings its own adapters must be loaded from a folder or hub "
                          "id (load_model), so that a LoRA save can point at it")
    hf.save_pretrained(out_dir, state_dict=builtin_adapters.base_state(hf), safe_serialization=True)


def saved_family(path: Path) -> str:
    """The family name a folder written by `LALMAdapter.save` was saved by."""
    return json.loads((Path(path) / MODEL_INFO).read_text())["family"]


def load_saved(path: Path, family: Family, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None, **options) -> LALMAdapter:
    """Load what `LALMAdapter.save` wrote (`family`: the one `saved_family(path)` names; see
    slufit.models.lalm.families.load_saved)."""
    import transformers
    from transformers import AutoFeatureExtractor, AutoTokenizer

    path = Path(path)
    info = json.loads((path / MODEL_INFO).read_text())
    if info["family"] != family.name:
        raise SlufitError(f"{path}: saved by family {info['family']!r}, not {family.name!r}")
    cls = getattr(transformers, family.model_class)
    tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
    if family.load_feature_extractor is not None:
        feature_extractor = family.load_feature_extractor(path / "tokenizer")
    else:
        feature_extractor = AutoFeatureExtractor.from_pretrained(path / "tokenizer")
    if info["lora"] is not None:
        source = path / info["base"] if info["base"] == "base" else info["base"]
    else:
        source = path / "model"
    model = cls.from_pretrained(source, dtype=dtype)
    if family.audio_adapter is not None and family.audio_adapter[1]:  # kept in a subfolder: loaded as its card does
        builtin_adapters.load(model, *family.audio_adapter, source=source)
    if device is not None:
        model.to(device)
    processor = family.processor(feature_extractor, tokenizer) if family.processor is not None else None
    options.pop("transcript_first", None)  # a saved model keeps the target format it was trained with
    adapter = LALMAdapter(model, tokenizer, family=family, processor=processor, feature_extractor=feature_extractor,
                          transcript_first=info["transcript_first"], lora=None,
                          always_frozen=tuple(info.get("always_frozen", ())),
                          base_name=info["base"] if info["base"] != "base" else None, **options)
    if info["lora"] is not None:
        from peft import PeftModel

        name = builtin_adapters.SLUFIT if (path / "adapter" / builtin_adapters.SLUFIT).is_dir() else "default"
        folder = path / "adapter" / (name if name != "default" else "")  # peft keeps a named adapter in a subfolder
        net = PeftModel.from_pretrained(model, folder, adapter_name=name, is_trainable=True)
        trained: set[str] = set()
        if (path / "non_lora.safetensors").is_file():
            from safetensors.torch import load_file

            extra = load_file(path / "non_lora.safetensors")
            model.load_state_dict(extra, strict=False)
            trained = {adapter.part_of(name) for name in extra}
        adapter.lora = info["lora"]
        adapter.module = LALMModule(net, family, audio_adapter=adapter.module.audio_adapter, lora_name=name)
        adapter.set_trainable(audio_encoder=False, projector=False, language_model=True)
        # What a later save must write besides the adapter: the parts trained before this save, and
        # whatever set_trainable unfreezes from now on.
        adapter._trained_parts = trained | {"language_model"}
    return adapter
