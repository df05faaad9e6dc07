"""`composed`: an LALM composed of a frozen Whisper encoder, the tiny bridge's CTC head and any causal LM.

    speech item: wave -> frozen ears (25 Hz) -> frozen CTC head -> segments (distributions over characters)
                 -> each segment x the LLM's own input embeddings of those characters' single-character tokens
    (connector "transcript": the segments' argmax characters as a string, re-read by the LLM's own
     tokenizer: a cascade through the same head, in the LLM's own words instead of one vector per letter;
     connector "projector": the ears' frames, 2 stacked, through a trainable MLP instead; SLAM-LLM style)
    text item:   the transcript in the LLM's own tokenization, or (simulate_text) simulated bridge output
                 (vectors, or with "transcript" their spelling, corrected by the `lexicon` option if set)
    prompt:      the LLM's chat template: system "Intent and slots.", user <input>, then the assistant's target
    target:      `intent | type=filler | ...` (slufit.models.composed.target) + the tokenizer's end token

The ears and the CTC head are the ones `slufit pretrain` trained for `tiny` (the head depends on
the ears only, so any LLM reuses it); they stay frozen, and each recording's segments (or
frames) are computed once and cached. Loss and logits are computed on target positions only:
the LM head (49k x 576 for SmolLM2) runs on ~15 positions per item, not on the prompt.
`set_trainable` maps audio_encoder -> ears (always frozen), projector -> the projector (the
CTC head is always frozen), language_model -> the LLM (its LoRA adapters with `lora`; its
input embeddings only without `freeze_embeddings`).

Saved as `slufit_model.json` (family "composed"), `llm/` (full fine-tuning: the whole LLM in
safetensors) or `adapter/` (LoRA: peft's adapter; the base is re-read from `llm`), `tokenizer/`,
`bridge.safetensors`, `confusions.safetensors`, `readings.safetensors` and `projector.safetensors`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from slufit.data.audio import AudioError, load_audio
from slufit.errors import SlufitError
from slufit.files import write_json
from slufit.models.base import SLUItem
from slufit.models.bridge import ctc
from slufit.models.bridge import readings as word_readings
from slufit.models.bridge.readings import READINGS_FILE, Readings
from slufit.models.bridge.simulate import simulate, simulate_with_readings
from slufit.models.bridge.units import normalize
from slufit.models.composed import target as compact_target
from slufit.models.composed.lexicon import DEFAULT_CUTOFF, Lexicon, spelled
from slufit.models.composed.lexicon import check_method as check_lexicon_method
from slufit.models.composed.llm import SMOLLM2, causal_lm, load_llm, resolve_llm
from slufit.models.ears import Ears
from slufit.models.ears.encoder_cache import EncoderCache, encoder_identity, recording_key

FAMILY = "composed"
MODEL_INFO = "slufit_model.json"
IGNORE = -100
CONNECTORS = ("ctc", "transcript", "projector")
HEAD_CONNECTORS = ("ctc", "transcript")  # read the CTC head's segments
SYSTEM = "Intent and slots."  # short: every prompt token costs a forward pass position
MAX_INPUT = 300  # input tokens or vectors per item
EARS_BATCH = 32
# How a model reads and answers: kept in MODEL_INFO by `save`, the defaults of a saved model's load.
SAVED_DEFAULTS = ("lexicon", "lexicon_cutoff", "lexicon_method", "copy_fillers", "copy_cutoff")
STACK = 2  # projector: ears frames stacked per vector (25 Hz -> 12.5 Hz)
SENTINEL = "\ue000"  # where the input goes in the rendered chat template (a private-use character)
LORA_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05,
                 "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


class Projector(nn.Module):
    """SLAM-LLM's linear projector: `STACK` stacked encoder frames -> Linear -> ReLU -> Linear -> LLM width."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_in * STACK, hidden), nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.relu(self.linear1(x)))


def stack_frames(frames: torch.Tensor) -> torch.Tensor:
    """[T, d] -> [T // STACK, d * STACK] (the last odd frame dropped)."""
    t = frames.shape[0] // STACK * STACK
    return frames[:t].reshape(t // STACK, frames.shape[1] * STACK)


class ComposedModule(nn.Module):
    """Every parameter the optimizer may see: the LLM, the (frozen) CTC head, the projector if any."""

    def __init__(self, llm: nn.Module, head: ctc.CTCHead, unit_rows: torch.Tensor,
                 projector: Projector | None = None) -> None:
        super().__init__()
        self.llm, self.head, self.projector = llm, head, projector
        self.register_buffer("unit_rows", unit_rows, persistent=False)  # LLM token id of each head unit

    def base(self) -> nn.Module:
        """The transformers causal LM (under peft's wrapper with LoRA; its layers carry the adapters)."""
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    def embed(self, input_ids, dists=None, dist_mask=None, frames=None, frame_mask=None) -> torch.Tensor:
        table = self.llm.get_input_embeddings()
        embeds = table(input_ids)
        if dists is not None and bool(dist_mask.any()):  # posteriors x the LLM's own character embeddings
            bridged = dists[dist_mask].to(table.weight.dtype) @ table.weight[self.unit_rows]
            embeds = embeds.masked_scatter(dist_mask.unsqueeze(-1), bridged.to(embeds.dtype))
        if frames is not None and bool(frame_mask.any()):
            projected = self.projector(frames[frame_mask].to(embeds.dtype))
            embeds = embeds.masked_scatter(frame_mask.unsqueeze(-1), projected)
        return embeds

    def forward(self, input_ids, attention_mask, labels, **inputs) -> torch.Tensor:
        embeds = self.embed(input_ids, **inputs)
        base = self.base()
        hidden = base.get_decoder()(inputs_embeds=embeds, attention_mask=attention_mask,
                                    use_cache=False).last_hidden_state
        shift = labels[:, 1:]
        keep = shift != IGNORE  # the prompt never counts, and the LM head runs on target positions only
        logits = base.get_output_embeddings()(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), shift[keep])


@dataclass
class ComposedSLU:
    """An SLUModel over ears + CTC bridge (or projector) + a causal LM. Build it with `load_model("composed")`."""

    module: ComposedModule
    tokenizer: Any
    ears: Ears
    head_units: str
    llm_source: str  # "smollm2", a folder or a hub id: where a LoRA run's base is re-read from
    connector: str = "ctc"
    confusions: dict[str, torch.Tensor] | None = None
    readings: Readings | None = None
    # Training only: the share of text items fed as simulated bridge vectors (as `tiny`), the factor on their
    # measured error rates, and the share of their words that take one of the head's real readings.
    simulate_text: float = 0.0
    simulate_scale: float = 1.0
    simulate_words: float = 0.0
    speech_readings: bool = False  # a stage's speech items lend their readings to simulated words (as `tiny`)
    lora: dict | None = None
    freeze_embeddings: bool = False  # full fine-tuning without the (tied) embedding table
    system: str = SYSTEM
    # Text input: a predicted filler that is not in the transcript becomes the most similar run of its words
    # (slufit.models.composed.target.snap_fillers), a copy constraint at decoding time.
    copy_fillers: bool = False
    # The least rapidfuzz ratio at which a filler is snapped (0: every filler becomes its most similar run of the
    # transcript). Measured on SLURP test text (docs/composed.md): 0 gave the best SLU-F1 and ~100 % verbatim.
    copy_cutoff: float = 0.0
    # transcript connector: correct the head's spelling word by word through its own readings (lexicon.py);
    # the least rapidfuzz ratio at which a heard word becomes the word it is most like.
    lexicon: bool = False
    lexicon_cutoff: float = DEFAULT_CUTOFF
    # "readings": word by word, as above; "compound": the whole transcript with SymSpell's compound lookup over
    # the readings' words (splits merged words, merges split ones; measured on SLURP test speech: WER 56.5 ->
    # 51.0 % with the d596b24 bridge, docs/composed.md).
    lexicon_method: str = "readings"
    ears_source: str | None = None
    cache_dir: str | None = None
    cache: EncoderCache = field(init=False)
    _lexicon: Readings | None = field(default=None, init=False)
    _corrector: Lexicon | None = field(default=None, init=False)
    _warned: set = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if self.connector not in CONNECTORS:
            raise SlufitError(f"composed: connector must be one of {', '.join(CONNECTORS)}, got {self.connector!r}")
        check_lexicon_method(self.lexicon_method)  # here too: the Lexicon is only built when `lexicon` is on
        for name in ("simulate_text", "simulate_words"):
            if not 0 <= getattr(self, name) <= 1:
                raise SlufitError(f"composed: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.simulate_text and (self.connector not in HEAD_CONNECTORS or self.confusions is None):
            raise SlufitError("composed: simulate_text needs the ctc or transcript connector and the bridge's "
                              "confusions")
        if self.simulate_words and not (self.readings or self.speech_readings):
            raise SlufitError(f"composed: simulate_words needs the bridge's word readings ({READINGS_FILE}) or "
                              "speech_readings")
        if self.speech_readings and not self.simulate_words:
            raise SlufitError("composed: speech_readings lends readings to simulated words: set simulate_words > 0")
        if self.readings is None:
            self.readings = Readings.from_tensors(word_readings.pack({}, len(self.head_units)))
        self._lexicon = self.readings
        if self.lexicon:
            if self.connector != "transcript" or not len(self._lexicon):
                raise SlufitError(f"composed: lexicon corrects the transcript connector's spelling through the "
                                  f"bridge's word readings ({READINGS_FILE}); connector is {self.connector!r}, "
                                  f"{len(self._lexicon)} words have readings")
            self._corrector = Lexicon.from_readings(self._lexicon, self.head_units, self.lexicon_cutoff,
                                                    self.lexicon_method)
        # ctc and transcript read the same segments: one cache for both.
        kind = "ctc" if self.connector in HEAD_CONNECTORS else self.connector
        extra = f"composed/{kind}/{self.ears.source}/{self.ears.window_s}/{self.head_units}"
        self.cache = EncoderCache(encoder_identity(self.module.head.named_parameters(), extra=extra), self.cache_dir)
        self.eos_id = self.tokenizer.convert_tokens_to_ids(self.tokenizer.eos_token)
        pad = self.tokenizer.pad_token or self.tokenizer.eos_token
        self.pad_id = self.tokenizer.convert_tokens_to_ids(pad)
        self.prefix_ids, self.suffix_ids = self._prompt()
        self.set_trainable(audio_encoder=False, projector=False, language_model=True)

    # -- prompt and inputs

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prompt(self) -> tuple[list[int], list[int]]:
        """Token ids before and after the input, from the LLM's own chat template."""
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + \
            [{"role": "user", "content": SENTINEL}]
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if rendered.count(SENTINEL) != 1:
            raise SlufitError("composed: the chat template does not render the user's message once")
        before, after = rendered.split(SENTINEL)
        return self._ids(before), self._ids(after)

    def target_ids(self, item: SLUItem) -> list[int]:
        return self._ids(compact_target.compact(item.example)) + [self.eos_id]

    def segments(self, items: Sequence[SLUItem]) -> list[torch.Tensor]:
        """Per speech item: the bridge's segments (ctc) or stacked ears frames (projector), cached per recording."""
        keys = [recording_key(item.audio_path) for item in items]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        for start in range(0, len(missing), EARS_BATCH):
            chunk = missing[start: start + EARS_BATCH]
            waves = [self._wave(items[i].audio_path) for i in chunk]
            audible = [i for i, w in zip(chunk, waves) if w is not None]
            frames = self.ears.encode([w for w in waves if w is not None]) if audible else []
            if self.connector in HEAD_CONNECTORS:
                outs = [ctc.segments(p) for p in ctc.posteriors(self.module.head, frames)] if frames else []
                empty = torch.zeros(0, len(self.head_units))
            else:
                outs = [stack_frames(f) for f in frames]
                empty = torch.zeros(0, self.ears.d_model * STACK)
            computed = dict(zip(audible, outs))
            for i in chunk:
                found[i] = computed.get(i, empty)
                self.cache.put(keys[i], found[i])
        return found

    def _wave(self, path: Path):
        try:
            return load_audio(path)
        except AudioError as err:
            if "silent" not in str(err) and "empty" not in str(err):
                raise
            if str(path) not in self._warned:
                self._warned.add(str(path))
                warnings.warn(f"{err}; the model hears it as silence (no input)", stacklevel=3)
            return None

    def _simulated(self, text: str) -> torch.Tensor:
        letters = self.head_units.replace(" ", "")
        normal = normalize(text, letters)
        units = [self.head_units.index(c) for c in normal]
        if not self.simulate_words:
            return simulate(units, self.confusions, self.simulate_scale)
        return simulate_with_readings(units, self.confusions, self.readings, normal.split(" "), self.simulate_words,
                                      self.simulate_scale)

    def transcript(self, dists: torch.Tensor) -> str:
        """What a run of segments (or simulated rows) spells, corrected through the lexicon if asked."""
        text = spelled(dists, self.head_units)
        return self._corrector.correct(text) if self._corrector is not None else text

    def _heard(self, dists: torch.Tensor) -> tuple[list[int], torch.Tensor | None]:
        """One input as the connector feeds it: vectors (ctc) or the LLM's tokens of its transcript."""
        if self.connector == "transcript":
            return self._ids(self.transcript(dists))[:MAX_INPUT], None
        dists = dists[:MAX_INPUT]
        return [self.pad_id] * len(dists), dists

    def _inputs(self, items: Sequence[SLUItem], training: bool) -> list[tuple[list[int], torch.Tensor | None]]:
        """Per item: input token ids (placeholders where vectors go) and its vectors (or None)."""
        modalities = {item.modality for item in items}
        if len(modalities) != 1:
            raise ValueError(f"a batch holds one modality, got {sorted(modalities)}")
        if modalities == {"speech"}:
            if self.connector == "projector":
                return [([self.pad_id] * min(len(s), MAX_INPUT), s[:MAX_INPUT]) for s in self.segments(items)]
            return [self._heard(s) for s in self.segments(items)]
        out = []
        for item in items:
            if training and self.simulate_text and float(torch.rand(())) < self.simulate_text:
                out.append(self._heard(self._simulated(item.example.text)))
            else:
                out.append((self._ids(item.example.text)[:MAX_INPUT], None))
        return out

    def collate(self, items: Sequence[SLUItem], with_targets: bool = True) -> dict[str, torch.Tensor]:
        """Training batch (right-padded, labels on the target only) or generation batch (left-padded prompts)."""
        inputs = self._inputs(items, training=with_targets)
        rows, label_rows = [], []
        for item, (ids, _) in zip(items, inputs):
            target = self.target_ids(item) if with_targets else []
            rows.append([*self.prefix_ids, *ids, *self.suffix_ids, *target])
            label_rows.append([IGNORE] * (len(rows[-1]) - len(target)) + target)
        width, left = max(len(r) for r in rows), not with_targets
        vector_width = self.ears.d_model * STACK if self.connector == "projector" else len(self.head_units)
        input_ids = torch.full((len(rows), width), self.pad_id)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE)
        vectors = torch.zeros((len(rows), width, vector_width))
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, (row, lab, (_, vec)) in enumerate(zip(rows, label_rows, inputs)):
            start = width - len(row) if left else 0
            input_ids[r, start: start + len(row)] = torch.tensor(row)
            attention[r, start: start + len(row)] = 1
            labels[r, start: start + len(row)] = torch.tensor(lab)
            if vec is not None and len(vec):
                at = start + len(self.prefix_ids)
                vectors[r, at: at + len(vec)] = vec
                mask[r, at: at + len(vec)] = True
        batch = {"input_ids": input_ids, "attention_mask": attention}
        if with_targets:
            batch["labels"] = labels
        if bool(mask.any()):
            names = ("dists", "dist_mask") if self.connector == "ctc" else ("frames", "frame_mask")
            batch[names[0]], batch[names[1]] = vectors, mask
        return batch

    # -- training

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module(**batch)

    def begin_stage(self, items: Sequence[SLUItem]) -> None:
        """With speech_readings, simulated words also read the stage's speech items' readings (as `tiny`)."""
        if not self.speech_readings:
            return
        self.readings = word_readings.with_stage_speech(self._lexicon, items, self.segments, self.head_units)

    def set_trainable(self, audio_encoder: bool, projector: bool, language_model: bool) -> None:
        # The ears and the CTC head stay frozen (the cached segments depend on them; the head is `slufit
        # pretrain`'s); `audio_encoder` has nothing to unfreeze.
        self.module.head.requires_grad_(False)
        if self.module.projector is not None:
            self.module.projector.requires_grad_(bool(projector))
        if self.lora is not None:  # only the adapters train; peft froze the rest
            for name, param in self.module.llm.named_parameters():
                param.requires_grad_(bool(language_model) and "lora_" in name)
            return
        self.module.llm.requires_grad_(bool(language_model))
        if self.freeze_embeddings:
            self.module.llm.get_input_embeddings().requires_grad_(False)

    # -- generation

    @torch.no_grad()
    def generate(self, items: Sequence[SLUItem], num_beams: int = 1, max_new_tokens: int = 128) -> list[str]:
        """One line of SLURP-prediction JSON per item, decoded from the compact target."""
        from transformers import GenerationConfig

        batch = self.collate(items, with_targets=False)
        device = next(self.module.llm.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        was_training = self.module.training
        self.module.eval()
        try:
            embeds = self.module.embed(batch["input_ids"], batch.get("dists"), batch.get("dist_mask"),
                                       batch.get("frames"), batch.get("frame_mask"))
            # slufit's own settings, whatever the checkpoint's generation_config says (no repetition penalty).
            settings = GenerationConfig(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
                                        eos_token_id=self.eos_id, pad_token_id=self.pad_id, use_cache=True)
            out = self.module.base().generate(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                                              generation_config=settings)
        finally:
            self.module.train(was_training)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        predictions = [compact_target.decode(t) for t in texts]
        if self.copy_fillers:
            predictions = [compact_target.snap_fillers(p, item.example.text, self.copy_cutoff)
                           if item.modality == "text" else p for p, item in zip(predictions, items)]
        return [json.dumps(p, ensure_ascii=False) for p in predictions]

    # -- save and load

    def save(self, out_dir: Path) -> None:
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.lora is not None:
            self.module.llm.save_pretrained(out_dir / "adapter")
        else:
            self.module.llm.save_pretrained(out_dir / "llm", safe_serialization=True)
        self.tokenizer.save_pretrained(out_dir / "tokenizer")
        tensors = lambda module: {k: v.contiguous() for k, v in module.state_dict().items()}  # noqa: E731
        save_file(tensors(self.module.head), str(out_dir / "bridge.safetensors"))
        if self.module.projector is not None:
            save_file(tensors(self.module.projector), str(out_dir / "projector.safetensors"))
        if self.confusions is not None:
            save_file({k: v.contiguous() for k, v in self.confusions.items()}, str(out_dir / "confusions.safetensors"))
        if len(self._lexicon):
            save_file(self._lexicon.tensors, str(out_dir / READINGS_FILE))
        write_json(out_dir / MODEL_INFO, {
            "family": FAMILY, "llm": self.llm_source, "connector": self.connector, "system": self.system,
            "lora": self.lora, "freeze_embeddings": self.freeze_embeddings, "head": self.module.head.config(),
            **{key: getattr(self, key) for key in SAVED_DEFAULTS},
            "units": self.head_units, "ears": self.ears_source, "window_s": int(self.ears.window_s)})


def bridge_folder(bridge: str | None) -> Path:
    """The trained bridge a fresh composed model hears through: a bridge folder (`slufit pretrain` prints it),
    a pretrain config (a file or a packaged name such as composed/bridge.yaml: trained on first use, then
    cached, as `slufit pretrain --config` does), or None: tiny's default bridge (configs/tiny/pretrain.yaml)."""
    from slufit.models.bridge.pretrain import load_config, pretrain
    from slufit.models.registry import tiny_folder
    from slufit.resources import resolve_config

    if bridge is None:
        return tiny_folder()
    if str(bridge).endswith((".yaml", ".yml")) and not Path(bridge).is_dir():
        return Path(pretrain(load_config(resolve_config(bridge))))
    return Path(bridge)


def is_composed_folder(path: Path) -> bool:
    info = Path(path) / MODEL_INFO
    return info.is_file() and json.loads(info.read_text(encoding="utf-8")).get("family") == FAMILY


def unit_token_ids(tokenizer: Any, units: str) -> list[int]:
    """The LLM's single-character token of each CTC unit (the space: the tokenizer's own token for " ")."""
    rows = []
    for unit in units:
        ids = tokenizer(unit, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise SlufitError(f"composed: the LLM's tokenizer has no single token for the CTC unit {unit!r} "
                              f"(got {len(ids)} tokens); the bridge reads one token per unit")
        rows.append(ids[0])
    return rows


def load_composed(name_or_path: str | Path = "composed", llm: str = SMOLLM2, bridge: str | None = None,
                  connector: str = "ctc", lora: dict | None = None, dtype: torch.dtype = torch.float32,
                  device: str | torch.device | None = None, gradient_checkpointing: bool = False,
                  encoder_cache_dir: str | None = None, **options: Any) -> ComposedSLU:
    """A fresh composed model (`llm` + the bridge `bridge`: see `bridge_folder`) or one saved by a run (its
    folder; `llm`, `bridge`, `connector` and `lora` are then its own)."""
    from safetensors.torch import load_file

    path = Path(name_or_path)
    saved = is_composed_folder(path)
    if saved:
        info = json.loads((path / MODEL_INFO).read_text(encoding="utf-8"))
        folder, llm, connector = path, info["llm"], info["connector"]
        options.setdefault("system", info["system"])
        for key in SAVED_DEFAULTS:  # how it reads and answers, unless the caller says otherwise (older saves lack them)
            if key in info:
                options.setdefault(key, info[key])
        options["freeze_embeddings"] = info["freeze_embeddings"]
        if lora is not None and lora != info["lora"]:
            raise SlufitError(f"{path}: a saved composed model keeps its own LoRA setting ({info['lora']})")
        lora = info["lora"]
    else:
        folder = bridge_folder(bridge)
        if not (folder / "bridge.json").is_file():
            raise SlufitError(f"composed: {folder} is not a bridge folder (`slufit pretrain` writes bridge.json)")
        info = json.loads((folder / "bridge.json").read_text(encoding="utf-8"))
    head = ctc.CTCHead.from_config(info["head"])
    head.load_state_dict(load_file(folder / "bridge.safetensors"))
    head.eval()
    if saved:  # a LoRA run re-reads its base LLM; a full fine-tuning run saved the whole LLM
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
        model = causal_lm(resolve_llm(llm) if lora is not None else str(path / "llm"), dtype)
    else:
        model, tokenizer = load_llm(llm, dtype)
    if lora is not None:
        model, lora = _with_lora(model, lora, path / "adapter" if saved else None)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    ears = Ears.load(info["ears"], info["window_s"])
    projector = None
    if connector == "projector":
        projector = Projector(ears.d_model, model.get_input_embeddings().weight.shape[1])
        if saved:
            projector.load_state_dict(load_file(path / "projector.safetensors"))
    units = info["units"]
    module = ComposedModule(model, head, torch.tensor(unit_token_ids(tokenizer, units)), projector)
    if device is not None:
        module.to(device)
    confusions = load_file(folder / "confusions.safetensors") if (folder / "confusions.safetensors").is_file() else None
    readings = Readings.load(folder / READINGS_FILE) if (folder / READINGS_FILE).is_file() else None
    return ComposedSLU(module, tokenizer, ears, units, llm, connector=connector, confusions=confusions,
                       readings=readings, lora=lora, ears_source=info["ears"], cache_dir=encoder_cache_dir, **options)


def _with_lora(model: nn.Module, options: dict, adapter: Path | None):
    """The LLM under peft LoRA: fresh adapters from `options`, or the saved ones in `adapter`."""
    from peft import LoraConfig, PeftModel, get_peft_model

    unknown = set(options) - set(LORA_DEFAULTS)
    if unknown:
        raise SlufitError(f"composed: unknown LoRA option(s) {sorted(unknown)}; known: {sorted(LORA_DEFAULTS)}")
    o = {**LORA_DEFAULTS, **options}
    if adapter is not None:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True), o
    config = LoraConfig(r=o["r"], lora_alpha=o["alpha"], lora_dropout=o["dropout"], target_modules=o["target_modules"],
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config), o
