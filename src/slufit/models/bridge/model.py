"""`tiny`: the CTC-bridge LALM behind SLUModel.

    speech item: wave -> frozen Whisper ears (25 Hz) -> frozen CTC head -> segments (unit distributions)
                 -> each segment x the LM's unit embeddings                      } the same space
    text item:   transcript -> units -> the LM's unit embeddings                 }
    LM input:    [<bos>] units-or-bridge-vectors [<sep>], target <I:intent> (<S:type> filler units)* <eos>

The language model is a small `Qwen2ForCausalLM` (untied input/output embeddings) trained
from scratch on the SLU task; its unit embeddings train, the ears and the CTC head stay
frozen, so each recording's segments are computed once and cached (memory, and
`cache_dir` on disk when given). `set_trainable` maps the three parts onto the bridge as
audio_encoder -> Whisper ears, projector -> CTC head (both always frozen here),
language_model -> the LM with its embeddings.

Saved as `slufit_model.json` (family "ctc-bridge"), `lm/` (transformers folder,
safetensors), `bridge.safetensors` (the head), `confusions.safetensors` and, when the
bridge has them, `readings.safetensors` (its word readings); the ears are re-read from
their pinned source.
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
from slufit.models.bridge.units import BOS, EOS, PAD, SEP, Vocabulary, normalize
from slufit.models.ears import SAMPLING_RATE, Ears
from slufit.models.ears.encoder_cache import EncoderCache, encoder_identity, recording_key

FAMILY = "ctc-bridge"
MODEL_INFO = "slufit_model.json"
IGNORE = -100
MAX_INPUT = 400  # units or segments read per item (a 5 s window gives at most 250 segments)
EARS_BATCH = 32  # recordings per pass of the ears when segments are computed


@dataclass(frozen=True)
class LMSizes:
    """The language model's sizes (issue 11's measured design: ~1.6 M parameters with its vocabulary)."""

    hidden: int = 256
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 768

    def __post_init__(self) -> None:
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise SlufitError(f"tiny: hidden ({self.hidden}) must divide by heads ({self.heads}), heads by kv_heads")


def build_lm(vocab: Vocabulary, sizes: LMSizes):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=len(vocab), hidden_size=sizes.hidden, intermediate_size=sizes.intermediate,
                         num_hidden_layers=sizes.layers, num_attention_heads=sizes.heads,
                         num_key_value_heads=sizes.kv_heads, max_position_embeddings=512,
                         pad_token_id=vocab.id(PAD), bos_token_id=vocab.id(BOS), eos_token_id=vocab.id(EOS),
                         tie_word_embeddings=False)
    lm = Qwen2ForCausalLM(config)
    lm.generation_config.pad_token_id = vocab.id(PAD)
    lm.generation_config.eos_token_id = vocab.id(EOS)
    return lm


class BridgeModule(nn.Module):
    """Every parameter the optimizer may see: the LM and the (frozen) CTC head. `forward(**batch)` -> loss."""

    def __init__(self, lm: nn.Module, head: ctc.CTCHead, head_rows: torch.Tensor) -> None:
        super().__init__()
        self.lm, self.head = lm, head
        self.register_buffer("head_rows", head_rows, persistent=False)  # LM vocabulary id of each head unit

    def embed(self, input_ids: torch.Tensor, dists: torch.Tensor | None = None,
              dist_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings; where `dist_mask` is set, the distribution over head units times their embeddings."""
        table = self.lm.get_input_embeddings()
        embeds = table(input_ids)
        if dists is not None and dist_mask is not None and bool(dist_mask.any()):
            units = table.weight[self.head_rows]  # [head units, hidden]
            bridged = (dists[dist_mask].to(units.dtype) @ units).to(embeds.dtype)
            embeds = embeds.masked_scatter(dist_mask.unsqueeze(-1), bridged)
        return embeds

    def forward(self, input_ids, attention_mask, labels, dists=None, dist_mask=None) -> torch.Tensor:
        embeds = self.embed(input_ids, dists, dist_mask)
        hidden = self.lm.model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state
        shift = labels[:, 1:]
        keep = shift != IGNORE  # the prompt never counts
        logits = self.lm.lm_head(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), shift[keep])


@dataclass
class BridgeSLU:
    """An SLUModel over the bridge. Build it with `slufit.models.registry.load_model("tiny")`."""

    module: BridgeModule
    ears: Ears
    vocab: Vocabulary
    head_units: str  # the CTC head's units (letters of its locales, then the space)
    confusions: dict[str, torch.Tensor] | None = None
    # Training only: the share of text items fed as simulated bridge vectors (slufit.models.bridge.simulate),
    # and the factor on the measured error rates they are drawn with.
    simulate_text: float = 0.0
    simulate_scale: float = 1.0
    # Each character's errors drawn given its neighbours (the head's context confusions), not on its own.
    simulate_context: bool = False
    # In a simulated item, the share of words with real readings (slufit.models.bridge.readings: the head's
    # segments for that word in held-out unlabelled clips) that take one of them instead of simulated units.
    simulate_words: float = 0.0
    readings: Readings | None = None
    # Also take readings from the speech items of the stage being trained: each recording, heard through the
    # bridge and aligned to its transcript, lends its words' segments to simulated text items (`begin_stage`).
    speech_readings: bool = False
    cache_dir: str | None = None  # disk folder for the per-recording segment cache (memory only when None)
    ears_source: str | None = None
    cache: EncoderCache = field(init=False)
    _warned: set = field(default_factory=set, init=False)
    _lexicon: Readings | None = field(default=None, init=False)  # the bridge's own readings (from pretraining)

    def __post_init__(self) -> None:
        if not 0 <= self.simulate_text <= 1:
            raise SlufitError(f"tiny: simulate_text must be in [0, 1], got {self.simulate_text}")
        if self.simulate_text and self.confusions is None:
            raise SlufitError("tiny: simulate_text needs the bridge's confusions (confusions.safetensors)")
        if self.simulate_context and "emit_context" not in (self.confusions or {}):
            raise SlufitError("tiny: simulate_context needs a bridge whose confusions have context rows "
                              "(pretrained since session 4: rerun `slufit pretrain`)")
        if not 0 <= self.simulate_words <= 1:
            raise SlufitError(f"tiny: simulate_words must be in [0, 1], got {self.simulate_words}")
        if self.simulate_words and not self.readings and not self.speech_readings:
            raise SlufitError(f"tiny: simulate_words needs the bridge's word readings ({READINGS_FILE}: pretrained "
                              "with lexicon_words > 0, see configs/tiny/pretrain.yaml) or speech_readings")
        if self.speech_readings and not self.simulate_words:
            raise SlufitError("tiny: speech_readings lends readings to simulated words: set simulate_words > 0")
        if self.readings is None:  # an empty set: speech_readings may add to it
            self.readings = Readings.from_tensors(word_readings.pack({}, len(self.head_units)))
        self._lexicon = self.readings
        if self.simulate_scale < 0:
            raise SlufitError(f"tiny: simulate_scale must be >= 0, got {self.simulate_scale}")
        identity = encoder_identity(self.module.head.named_parameters(), extra=f"bridge/{self.ears.source}/"
                                    f"{self.ears.window_s}/{self.head_units}")
        self.cache = EncoderCache(identity, self.cache_dir)
        self.set_trainable(audio_encoder=False, projector=False, language_model=True)

    # -- items to sequences

    @property
    def window_s(self) -> float:
        return self.ears.window_s

    def _head_unit_ids(self, text: str) -> list[int]:
        letters = self.head_units.replace(" ", "")
        return [self.head_units.index(c) for c in normalize(text, letters)]

    def segments(self, items: Sequence[SLUItem]) -> list[torch.Tensor]:
        """The bridge's segments of each speech item's recording, computed once per recording."""
        keys = [recording_key(item.audio_path) for item in items]
        found = [self.cache.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        # In chunks: the ears on a few thousand clips at once (a stage's speech, `begin_stage`) ran 1.75x
        # slower per clip than in batches of 32, and held them all in memory.
        for start in range(0, len(missing), EARS_BATCH):
            chunk = missing[start: start + EARS_BATCH]
            waves = [self._wave(items[i].audio_path) for i in chunk]
            audible = [i for i, w in zip(chunk, waves) if w is not None]
            frames = self.ears.encode([w for w in waves if w is not None]) if audible else []
            posts = ctc.posteriors(self.module.head, frames) if frames else []
            computed = {i: ctc.segments(p) for i, p in zip(audible, posts)}
            for i in chunk:
                seg = computed.get(i, torch.zeros(0, len(self.head_units)))
                self.cache.put(keys[i], seg)
                found[i] = seg
        return found

    def _wave(self, path: Path):
        """16 kHz samples; an empty or silent recording is heard as silence (no segments), with a warning."""
        try:
            wave = load_audio(path)
        except AudioError as err:
            if "silent" not in str(err) and "empty" not in str(err):
                raise
            self._warn(path, f"{err}; the model hears it as silence (no input units)")
            return None
        if len(wave) > self.ears.feature_extractor.n_samples:
            self._warn(path, f"{path}: {len(wave) / SAMPLING_RATE:.1f} s is longer than the tiny model's "
                             f"{self.window_s:.0f} s audio window; the rest is cut off")
        return wave

    def _warn(self, path: Path, message: str) -> None:
        if str(path) not in self._warned:
            self._warned.add(str(path))
            warnings.warn(message, stacklevel=4)

    def _inputs(self, items: Sequence[SLUItem], training: bool) -> list[tuple[list[int], torch.Tensor | None]]:
        """Per item: the LM ids of its input (placeholders where a distribution goes) and the distributions."""
        modalities = {item.modality for item in items}
        if len(modalities) != 1:
            raise ValueError(f"a batch holds one modality, got {sorted(modalities)}")
        pad = self.vocab.id(PAD)
        if modalities == {"speech"}:
            return [([pad] * min(len(s), MAX_INPUT), s[:MAX_INPUT]) for s in self.segments(items)]
        out = []
        for item in items:
            if training and self.simulate_text and float(torch.rand(())) < self.simulate_text:
                dist = self._simulated(item.example.text)
                out.append(([pad] * min(len(dist), MAX_INPUT), dist[:MAX_INPUT]))
            else:
                out.append((self.vocab.unit_ids(item.example.text)[:MAX_INPUT], None))
        return out

    def _simulated(self, text: str) -> torch.Tensor:
        units = self._head_unit_ids(text)
        if not self.simulate_words:
            return simulate(units, self.confusions, self.simulate_scale, context=self.simulate_context)
        words = "".join(self.head_units[u] for u in units).split(" ")
        return simulate_with_readings(units, self.confusions, self.readings, words, self.simulate_words,
                                      self.simulate_scale, context=self.simulate_context)

    def collate(self, items: Sequence[SLUItem], with_targets: bool = True) -> dict[str, torch.Tensor]:
        """Training batch (right-padded, labels on the target only) or, without targets, a generation
        batch (left-padded prompts)."""
        inputs = self._inputs(items, training=with_targets)
        bos, sep, pad = self.vocab.id(BOS), self.vocab.id(SEP), self.vocab.id(PAD)
        rows, label_rows, dist_rows = [], [], []  # a row's distributions sit right after its <bos>
        for item, (ids, dist) in zip(items, inputs):
            target = self.vocab.target_ids(item.example) if with_targets else []
            rows.append([bos, *ids, sep, *target])
            label_rows.append([IGNORE] * (len(ids) + 2) + target)
            dist_rows.append(dist)
        width = max(len(r) for r in rows)
        left = not with_targets  # generation continues at the end of every row
        n_units = len(self.head_units)
        input_ids = torch.full((len(rows), width), pad)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE)
        dists = torch.zeros((len(rows), width, n_units))
        dist_mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, (row, lab, dist) in enumerate(zip(rows, label_rows, dist_rows)):
            start = width - len(row) if left else 0
            input_ids[r, start: start + len(row)] = torch.tensor(row)
            attention[r, start: start + len(row)] = 1
            labels[r, start: start + len(row)] = torch.tensor(lab)
            if dist is not None and len(dist):
                dists[r, start + 1: start + 1 + len(dist)] = dist
                dist_mask[r, start + 1: start + 1 + len(dist)] = True
        batch = {"input_ids": input_ids, "attention_mask": attention}
        if with_targets:
            batch["labels"] = labels
        if bool(dist_mask.any()):
            batch["dists"], batch["dist_mask"] = dists, dist_mask
        return batch

    # -- training

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.module(**batch)

    def begin_stage(self, items: Sequence[SLUItem]) -> None:
        """Called by the trainer as a stage starts, with its items: with `speech_readings`, the readings of
        simulated words become the bridge's own plus those of this stage's speech items (so a stage without
        speech, like a curriculum's text stage, trains exactly as a text-only run does)."""
        if not self.speech_readings:
            return
        self.readings = word_readings.with_stage_speech(self._lexicon, items, self.segments, self.head_units)

    def set_trainable(self, audio_encoder: bool, projector: bool, language_model: bool) -> None:
        # The ears and the CTC head stay frozen whatever is asked: the segments cached per recording
        # depend on them, and the head is trained on unlabelled speech by `slufit pretrain`.
        self.module.head.requires_grad_(False)
        self.module.lm.requires_grad_(bool(language_model))

    # -- generation

    @torch.no_grad()
    def generate(self, items: Sequence[SLUItem], num_beams: int = 1, max_new_tokens: int = 128) -> list[str]:
        """One line of SLURP-prediction JSON per item, decoded from the compact target."""
        batch = self.collate(items, with_targets=False)
        device = next(self.module.lm.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        was_training = self.module.training
        self.module.eval()
        try:
            embeds = self.module.embed(batch["input_ids"], batch.get("dists"), batch.get("dist_mask"))
            out = self.module.lm.generate(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                                          max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
                                          eos_token_id=self.vocab.id(EOS), pad_token_id=self.vocab.id(PAD),
                                          use_cache=True)
        finally:
            self.module.train(was_training)
        return [json.dumps(self.vocab.decode_target(row.tolist()), ensure_ascii=False) for row in out]

    # -- save and load

    def save(self, out_dir: Path) -> None:
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.module.lm.save_pretrained(out_dir / "lm", safe_serialization=True)
        save_file({k: v.contiguous() for k, v in self.module.head.state_dict().items()}, str(out_dir / "bridge.safetensors"))
        if self.confusions is not None:
            save_file({k: v.contiguous() for k, v in self.confusions.items()}, str(out_dir / "confusions.safetensors"))
        if self._lexicon is not None and len(self._lexicon):  # the bridge's own, not a stage's speech
            save_file(self._lexicon.tensors, str(out_dir / READINGS_FILE))
        write_json(out_dir / MODEL_INFO, {"family": FAMILY, "head": self.module.head.config(), "units": self.head_units,
                                          "ears": self.ears_source, "window_s": int(self.window_s),
                                          "vocabulary": self.vocab.to_dict()})


def is_bridge_folder(path: Path) -> bool:
    """A trained bridge (`slufit pretrain`) or a model saved by a tiny run."""
    if (path / "bridge.json").is_file():
        return True
    info = path / MODEL_INFO
    return info.is_file() and json.loads(info.read_text(encoding="utf-8")).get("family") == FAMILY


def load_bridge(path: str | Path, lm_sizes: dict | None = None, device: str | torch.device | None = None,
                dtype: torch.dtype = torch.float32, **options: Any) -> BridgeSLU:
    """A BridgeSLU from a pretrained bridge folder (a fresh LM on top) or a saved tiny model; the LM in
    `dtype` (the frozen CTC head stays float32)."""
    from safetensors.torch import load_file
    from transformers import Qwen2ForCausalLM

    path = Path(path)
    saved = (path / MODEL_INFO).is_file()
    info = json.loads((path / (MODEL_INFO if saved else "bridge.json")).read_text(encoding="utf-8"))
    vocab = Vocabulary.from_dict(info["vocabulary"])
    head = ctc.CTCHead.from_config(info["head"])
    head.load_state_dict(load_file(path / "bridge.safetensors"))
    head.eval()
    if saved:
        lm = Qwen2ForCausalLM.from_pretrained(path / "lm", dtype=torch.float32)
        c = lm.config
        own = LMSizes(c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads,
                      c.intermediate_size)
        if lm_sizes and LMSizes(**lm_sizes) != own:  # the run's own config passes its sizes again: fine
            raise SlufitError(f"{path}: a saved tiny model keeps its own LM sizes ({own}); lm_sizes {lm_sizes} differ")
    else:
        try:
            sizes = LMSizes(**(lm_sizes or {}))
        except TypeError as err:
            raise SlufitError(f"tiny: lm_sizes: {err}") from None
        lm = build_lm(vocab, sizes)
    lm.to(dtype)
    confusions = load_file(path / "confusions.safetensors") if (path / "confusions.safetensors").is_file() else None
    readings = Readings.load(path / READINGS_FILE) if (path / READINGS_FILE).is_file() else None
    units = info["units"]
    rows = torch.tensor([vocab.id(u) for u in units])
    module = BridgeModule(lm, head, rows)
    if device is not None:
        module.to(device)
    ears = Ears.load(info["ears"], info["window_s"])
    return BridgeSLU(module, ears, vocab, units, confusions, readings=readings, ears_source=info["ears"], **options)

