"""Known models by short name, and `load_model`, which turns a name, a folder or a hub id into an SLUModel.

    load_model("qwen2-audio-7b-instruct", lora={"r": 16})   # hub id, downloaded by transformers when online
    load_model("runs/mix-5/model")                           # a model saved by a slufit run
    load_model("/models/Qwen2-Audio-7B-Instruct")            # a transformers folder
    load_model("tiny")                                       # the embedded default (its bridge trained and cached on first use)
    load_model("composed", llm="smollm2")                    # Whisper + CTC bridge + any causal LM (docs/composed.md)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from slufit.errors import SlufitError
from slufit.models.lalm import families

# name -> hub id, or "module:function" returning the folder of a model: the embedded default, then each LALM
# family's hub ids (slufit.models.lalm.families, one module per family).
# `composed` (slufit.models.composed) joins frozen ears and the CTC bridge to any causal LM (option `llm`).
MODELS: dict[str, str] = {"tiny": "slufit.models.registry:tiny_folder",
                          "composed": "slufit.models.composed:load_composed", **families.MODELS}


def tiny_folder(cache_dir: str | None = None) -> Path:
    """The tiny default's trained CTC bridge (configs/tiny/pretrain.yaml; trained here on first use, then cached)."""
    from slufit.models.bridge.pretrain import DEFAULT_CONFIG, load_config, pretrain

    config = load_config(DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    if cache_dir is not None:
        config.cache_dir = cache_dir
    return Path(pretrain(config))


def default_dtype(device: str | torch.device | None) -> torch.dtype:
    """bf16 on a GPU (as the study trains), float32 on the CPU (bf16 matmuls are slow and lossy there)."""
    return torch.bfloat16 if torch.device(device or "cpu").type == "cuda" else torch.float32


def load_model(name_or_path: str | Path, lora: dict | None = None, dtype: torch.dtype | str | None = None,
               device: str | torch.device | None = None, transcript_first: bool = False,
               gradient_checkpointing: bool = False, trust_remote_code: bool = False,
               attn_implementation: str = "sdpa", encoder_cache_dir: str | None = None,
               use_encoder_cache: bool = True, blind_text: float = 0.0, simulate_text: float = 0.0,
               simulate_scale: float = 1.0, simulate_context: bool = False, simulate_words: float = 0.0,
               speech_readings: bool = False, lm_sizes: dict | None = None, **composed: Any):
    """An SLUModel for a known name (`MODELS`), a folder saved by slufit or transformers, or a hub id.

    lora: None for full fine-tuning, or LoRA options {"r", "alpha", "dropout", "target_modules"}
        (defaults in slufit.models.lalm.adapter.LORA_DEFAULTS; target_modules a regex or a list).
    dtype: torch dtype or its name; default bf16 on CUDA, float32 on CPU.
    device: where the model goes ("cuda", "cpu", ...); default stays on the CPU.
    transcript_first: the target starts with the transcript (slufit.target).
    gradient_checkpointing: recompute activations in the backward pass (less memory, ~30 % slower).
    encoder_cache_dir: a folder where frozen-encoder outputs are also kept across runs.
    blind_text: transcript-first training only, the share of text items asked without their transcript.
    simulate_text, simulate_scale, simulate_context, simulate_words, speech_readings, lm_sizes: the `tiny`
        bridge only (slufit.models.bridge.model): the share of text items fed as simulated bridge vectors, the
        factor on their error rates, whether each character's errors depend on its neighbours, the share of
        words that take one of the head's real readings of them, whether the stage's speech items add their
        readings, the LM's sizes.
    composed: the `composed` family's own options (slufit.models.composed.load_composed: llm, bridge, connector,
        freeze_embeddings, system, copy_fillers, copy_cutoff); simulate_text, simulate_scale, simulate_words,
        speech_readings, lora, gradient_checkpointing and encoder_cache_dir apply to it too.
    """
    from slufit.models.lalm.adapter import MODEL_INFO, LALMAdapter

    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise SlufitError(f"unknown dtype {dtype!r}; use e.g. bfloat16, float16, float32")
        dtype = getattr(torch, dtype)
    dtype = dtype or default_dtype(device)
    options: dict[str, Any] = {"transcript_first": transcript_first, "cache_dir": encoder_cache_dir,
                               "use_encoder_cache": use_encoder_cache, "blind_text": blind_text}
    name = str(name_or_path)
    from slufit.models.composed import is_composed_folder, load_composed

    if name == "composed" or is_composed_folder(Path(name)):
        if lm_sizes or simulate_context or transcript_first or blind_text:
            raise SlufitError(f"{name}: lm_sizes, simulate_context, transcript_first and blind_text are not "
                              "options of the composed family")
        return load_composed(name, lora=lora, dtype=dtype, device=device, gradient_checkpointing=gradient_checkpointing,
                             encoder_cache_dir=encoder_cache_dir, simulate_text=simulate_text,
                             simulate_scale=simulate_scale, simulate_words=simulate_words,
                             speech_readings=speech_readings, **composed)
    if composed:
        raise SlufitError(f"{name}: unknown option(s) {', '.join(sorted(composed))} (options of the composed family)")
    source = MODELS.get(name, name)
    if ":" in source and not Path(source).exists():  # a builder, imported only when asked for
        module_name, function = source.split(":")
        import importlib

        source = str(getattr(importlib.import_module(module_name), function)())
    path = Path(source)
    from slufit.models.bridge.model import is_bridge_folder, load_bridge

    if is_bridge_folder(path):
        unsupported = {"lora": lora is not None, "transcript_first": transcript_first, "blind_text": blind_text > 0,
                       "gradient_checkpointing": gradient_checkpointing}
        if any(unsupported.values()):
            raise SlufitError(f"{name}: the tiny CTC-bridge model does not take "
                              f"{', '.join(k for k, v in unsupported.items() if v)} (LALM options)")
        return load_bridge(path, lm_sizes=lm_sizes, device=device, dtype=dtype, simulate_text=simulate_text,
                           simulate_scale=simulate_scale, simulate_context=simulate_context,
                           simulate_words=simulate_words, speech_readings=speech_readings, cache_dir=encoder_cache_dir)
    if simulate_text or simulate_scale != 1.0 or simulate_context or simulate_words or speech_readings or lm_sizes:
        raise SlufitError(f"{name}: simulate_text, simulate_scale, simulate_context, simulate_words, speech_readings "
                          "and lm_sizes are options of the tiny bridge only")
    if (path / MODEL_INFO).is_file():  # saved by slufit
        if lora is not None:
            raise SlufitError(f"{path}: a saved slufit model keeps its own LoRA setting; do not pass lora")
        adapter = families.load_saved(path, device=device, dtype=dtype, **options)
    else:
        family, model, tokenizer, processor, feature_extractor = _from_pretrained(
            source, dtype, trust_remote_code, attn_implementation)
        if device is not None:
            model.to(device)
        base = str(path.resolve()) if path.is_dir() else source
        adapter = LALMAdapter(model, tokenizer, family=family, processor=processor,
                              feature_extractor=feature_extractor, lora=lora, base_name=base, **options)
    if gradient_checkpointing:
        adapter.enable_gradient_checkpointing()
    return adapter


def _from_pretrained(source: str, dtype: torch.dtype, trust_remote_code: bool, attn_implementation: str):
    """(family, model, tokenizer, processor or None, feature extractor) from a transformers folder or hub id."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        known = ", ".join(MODELS)
        raise SlufitError(f"cannot load model {source!r}: not a known name ({known}), a model folder, "
                          f"or a reachable hub id ({str(err).splitlines()[0]})") from err
    if config.model_type not in families.MODEL_TYPES:
        raise SlufitError(f"{source}: model type {config.model_type!r} has no slufit adapter; "
                          f"supported: {', '.join(sorted(families.MODEL_TYPES))}")
    return families.from_pretrained(source, config.model_type, dtype=dtype, attn_implementation=attn_implementation,
                                    trust_remote_code=trust_remote_code)
