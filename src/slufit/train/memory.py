"""Per-GPU memory of a run under a launcher config, before anything is launched (`slufit train --dry-run`).

Parameter counts come from the model's config: the transformers class is built on the meta device (no
weights), and its parameters are counted per part (audio encoder, projector, language model), per wrap unit
(`_no_split_modules`) and per LoRA target. A hub id that is not on this machine falls back to `KNOWN`, a small
table measured the same way from the published configs. Terms, in bytes per GPU:

- weights: every parameter in its load dtype (slufit.train.precision); trainable ones in fp32 where they are
  fp32 (LoRA adapters; FSDP master copies under mixed precision); under FSDP divided by the processes,
  except a never-trained audio encoder, which stays whole outside the shards.
- gradients and AdamW's two states: per trainable parameter, in its dtype; under FSDP sharded.
- DDP buckets: DDP reduces gradients through flat buckets as large as the gradients (accelerate's default,
  gradient_as_bucket_view=False).
- FSDP gathered: the root's own parameters (embeddings, head, projector) plus two gathered layers (the one
  computing and the one prefetched), in the compute dtype.
- activations of the longest batch: train.batch_size items of a full audio window plus 256 text tokens; per
  language-model layer 34 x tokens x hidden values (Korthikanti et al. 2022, attention by SDPA), or, with
  gradient checkpointing, 2 x tokens x hidden per layer plus one layer recomputed; the fp32 logits of 128
  target tokens per item (forward and gradient); the same for the encoder when a stage trains it.
- evaluation KV cache: eval.batch_size x eval.beams sequences of that length plus eval.max_new_tokens.

The peak is the resident state plus the larger of the training activations and the evaluation KV cache. A
run fits when the peak is within 90 % of the card (the rest for the CUDA context and fragmentation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GB = 1e9
TEXT_TOKENS = 256  # prompt + target tokens of the longest item, beside its audio
TARGET_TOKENS = 128


@dataclass(frozen=True)
class ModelSize:
    """What the estimate needs to know about a model."""

    parts: dict[str, int]  # parameters per part: audio_encoder, projector, language_model, other
    lora_per_rank: int  # LoRA parameters per unit of rank r with the family's default targets
    largest_unit: int  # parameters of the largest wrap unit (a decoder layer)
    root: int  # parameters outside every wrap unit (embeddings, head, projector, ...)
    hidden: int
    layers: int
    vocab: int
    kv_width: int  # key/value heads x head size
    audio_tokens: int  # language-model tokens of one full audio window
    encoder_hidden: int
    encoder_layers: int
    encoder_frames: int
    source: str = "config on the meta device"

    @property
    def total(self) -> int:
        return sum(self.parts.values())


# Measured with `model_size` from the published configs (Qwen2-Audio-7B(-Instruct): text 4096 x 32 layers,
# vocabulary 156,032, untied head; Whisper-large-v3 encoder 1280 x 32; 8,397,094,912 parameters).
_QWEN2_AUDIO_7B = ModelSize(
    parts={"audio_encoder": 636_968_960, "projector": 5_246_976, "language_model": 7_754_878_976, "other": 0},
    lora_per_rank=2_498_560, largest_unit=202_395_648, root=1_290_797_056,
    hidden=4096, layers=32, vocab=156_032, kv_width=4096, audio_tokens=750, encoder_hidden=1280, encoder_layers=32,
    encoder_frames=1500, source="known table (published config; not on this machine)")
KNOWN: dict[str, ModelSize] = {"Qwen/Qwen2-Audio-7B-Instruct": _QWEN2_AUDIO_7B, "Qwen/Qwen2-Audio-7B": _QWEN2_AUDIO_7B}


def _config_folder(source: str) -> str:
    path = Path(source)
    for sub in ("model", "base"):  # a model saved by slufit
        if (path / "slufit_model.json").is_file() and (path / sub / "config.json").is_file():
            return str(path / sub)
    return source


def model_size(name: str) -> ModelSize | None:
    """Counts from the model's config on the meta device, or from `KNOWN`; None when neither is at hand."""
    import transformers
    from transformers import AutoConfig

    from slufit.models.lalm.families import FAMILIES
    from slufit.models.registry import MODELS

    source = MODELS.get(name, name)
    if ":" in source and not Path(source).exists():
        return None  # built on first use (the tiny models): nothing to count without building it
    try:
        config = AutoConfig.from_pretrained(_config_folder(source), local_files_only=True)
    except (OSError, ValueError):
        return KNOWN.get(source)
    family = next((f for f in FAMILIES.values() if getattr(transformers, f.model_class).config_class is type(config)),
                  None)
    if family is None:
        return KNOWN.get(source)
    with torch.device("meta"):
        model = getattr(transformers, family.model_class)._from_config(config)
    return _measure(model, family, config)


def _measure(model: torch.nn.Module, family: Any, config: Any) -> ModelSize:
    from slufit.train.distributed import wrap_units

    parts = {"audio_encoder": 0, "projector": 0, "language_model": 0, "other": 0}
    for name, param in model.named_parameters():
        part = next((p for prefix, p in family.parts if name.startswith(prefix)), "other")
        parts[part] += param.numel()
    units = [sum(p.numel() for p in model.get_submodule(n).parameters()) for n in wrap_units(model)]
    lora = sum(m.in_features + m.out_features for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and re.fullmatch(family.lora_targets, n))
    text = config.get_text_config()
    audio = getattr(config, "audio_config", None)
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    frames = getattr(audio, "max_source_positions", 1500)
    return ModelSize(parts=parts, lora_per_rank=lora, largest_unit=max(units, default=0),
                     root=sum(parts.values()) - sum(units), hidden=text.hidden_size, layers=text.num_hidden_layers,
                     vocab=text.vocab_size, kv_width=getattr(text, "num_key_value_heads", heads) * head_dim,
                     audio_tokens=frames // 2,
                     encoder_hidden=getattr(audio, "d_model", getattr(audio, "hidden_size", 0)),
                     encoder_layers=getattr(audio, "encoder_layers", getattr(audio, "num_hidden_layers", 0)),
                     encoder_frames=frames)


@dataclass(frozen=True)
class Launcher:
    """What an accelerate config means for memory."""

    name: str
    kind: str  # one (a single process), ddp, fsdp
    processes: int


def read_launcher(path: Path) -> Launcher:
    from slufit.files import read_yaml_mapping

    data = read_yaml_mapping(path)
    kind = {"FSDP": "fsdp", "MULTI_GPU": "ddp", "MULTI_CPU": "ddp"}.get(data.get("distributed_type", "NO"), "one")
    processes = int(data.get("num_processes", 1)) * int(data.get("num_machines", 1) or 1)
    return Launcher(Path(path).name, kind if processes > 1 or kind == "fsdp" else "one", processes)


def estimate(size: ModelSize, config: Any, launcher: Launcher) -> dict[str, float]:
    """Bytes per GPU of each term (see the module docstring) and the peak."""
    from slufit.train.schemes import stage_configs

    lora = config.model.options.get("lora")
    stages = stage_configs(config)
    trains = {part for s in stages for part in ("audio_encoder", "projector", "language_model")
              if getattr(s.trainable, part)}
    dtype = config.model.dtype if config.model.dtype != "auto" else config.model.options.get("dtype", "bfloat16")
    w = torch.empty((), dtype=getattr(torch, dtype)).element_size()
    mixed = config.train.mixed_precision != "no"
    compute = 2 if mixed else w
    fsdp, n = launcher.kind == "fsdp", launcher.processes
    if lora is not None:
        trainable = size.lora_per_rank * int(lora.get("r", 16)) if "language_model" in trains else 0
        trainable += sum(size.parts[p] for p in trains - {"language_model"})
        wt = 4  # peft keeps adapters in fp32
    else:
        trainable = sum(size.parts[p] for p in trains)
        wt = 4 if (fsdp and mixed) or w == 4 else w
    frozen = size.total - (trainable if lora is None else sum(size.parts[p] for p in trains - {"language_model"}))
    replicated = size.parts["audio_encoder"] if fsdp and "audio_encoder" not in trains else 0
    shard = n if fsdp else 1
    terms = {
        "weights": (frozen - replicated) * w / shard + replicated * w + trainable * wt / shard,
        "gradients": trainable * wt / shard,
        "ddp_buckets": trainable * wt if launcher.kind == "ddp" else 0.0,
        "optimizer": 2 * trainable * wt / shard,
        "fsdp_gathered": (size.root + 2 * size.largest_unit) * compute if fsdp else 0.0,
    }
    b, tokens = config.train.batch_size, size.audio_tokens + TEXT_TOKENS
    checkpointing = bool(config.model.options.get("gradient_checkpointing"))

    def stack(layers: int, t: int, h: int) -> float:
        per_layer = (2 if checkpointing else 34) * b * t * h * compute
        return layers * per_layer + (34 * b * t * h * compute if checkpointing else 0)

    activations = stack(size.layers, tokens, size.hidden) + 2 * 4 * b * TARGET_TOKENS * size.vocab
    if "audio_encoder" in trains:
        activations += stack(size.encoder_layers, size.encoder_frames, size.encoder_hidden)
    e = config.eval
    kv = e.batch_size * e.beams * (tokens + e.max_new_tokens) * size.layers * 2 * size.kv_width * compute
    terms["activations"], terms["eval_kv_cache"] = activations, kv
    state = sum(v for k, v in terms.items() if k not in ("activations", "eval_kv_cache"))
    terms["peak"] = state + max(activations, kv)
    terms["trainable"] = trainable
    return terms


def report(config: Any, launchers: list[Launcher], gpu_gb: float) -> str:
    """The dry run's memory table: one line per launcher, with its verdict against `gpu_gb`."""
    size = model_size(config.model.name)
    if size is None:
        return (f"# memory: no estimate for {config.model.name!r} (no config on this machine and not in the known "
                f"table of slufit.train.memory)")
    first = estimate(size, config, launchers[0])
    scheme = "LoRA" if config.model.options.get("lora") is not None else "full fine-tuning"
    lines = [f"# memory per GPU (estimate, slufit.train.memory): {size.total / 1e9:.2f} B parameters ({size.source}), "
             f"{scheme}, {first['trainable'] / 1e9:.2f} B trainable, micro-batch {config.train.batch_size} x "
             f"{size.audio_tokens + TEXT_TOKENS} tokens (longest batch: a full audio window + {TEXT_TOKENS} text "
             f"tokens), verdicts against {gpu_gb:g} GB (fits: peak <= 90 %)",
             f"  {'launcher':<22}{'procs':>6}{'weights':>9}{'grads':>8}{'ddp-bkt':>9}{'adamw':>8}{'gathered':>10}"
             f"{'activ.':>8}{'eval-kv':>9}{'peak GB':>9}  verdict"]
    for launcher in launchers:
        t = estimate(size, config, launcher)
        verdict = "fits" if t["peak"] <= 0.9 * gpu_gb * GB else f"DOES NOT FIT {gpu_gb:g} GB"
        label = f"{launcher.name} ({launcher.kind})"
        lines.append(f"  {label:<22}{launcher.processes:>6}" + "".join(
            f"{t[k] / GB:>{width}.1f}" for k, width in (("weights", 9), ("gradients", 8), ("ddp_buckets", 9),
                                                        ("optimizer", 8), ("fsdp_gathered", 10), ("activations", 8),
                                                        ("eval_kv_cache", 9), ("peak", 9))) + f"  {verdict}")
    return "\n".join(lines)


def default_launchers(files: list[Path] | None) -> list[Launcher]:
    """One process, then each given accelerate config, or every packaged configs/accelerate/ file."""
    if files is None:
        from slufit.resources import configs_root

        files = sorted((configs_root() / "accelerate").glob("*.yaml"))
    return [Launcher("one process", "one", 1), *(read_launcher(f) for f in files)]


def detected_gpu_gb() -> float | None:
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / GB
    return None
