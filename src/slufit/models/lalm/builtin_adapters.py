"""Adapters a checkpoint brings with it (Granite Speech's audio LoRA, Phi-4-multimodal's `speech-lora`), beside
slufit's own LoRA.

The checkpoints' authors use these adapters for audio inputs only: Granite Speech's generate turns its LoRA on when
audio is given and off otherwise; Phi-4-multimodal's model card loads `speech-lora` and sets it for audio. slufit
does the same in training and in evaluation, per batch: the audio adapter is active for speech batches and
inactive for text batches, and slufit's LoRA (a separate adapter, `SLUFIT`) is active for both.

transformers loads an adapter it finds in a checkpoint folder (Granite's, at the folder's top), but its own
switches (`enable_adapters`, `disable_adapters`, `set_adapter`) refuse peft < 0.22, which does not exist yet
(peft 0.21 is the newest): slufit switches the adapter layers itself, through peft's layer API, which keeps
working and leaves `requires_grad` as `set_trainable` set it.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

SLUFIT = "slufit"  # slufit's LoRA, when the checkpoint already has an adapter ("default" otherwise, as before)


def loaded(model: nn.Module) -> list[str]:
    """The adapters transformers loaded into `model` with its checkpoint (none for a plain model)."""
    if not getattr(model, "_hf_peft_config_loaded", False):
        return []
    return list(getattr(model, "peft_config", {}))


def load(model: nn.Module, name: str, subfolder: str, source: str | Path) -> bool:
    """Load adapter `name` from `subfolder` of the checkpoint `source` (a folder or a hub id) when it is there, as
    the model card does (`model.load_adapter(path, adapter_name=..., adapter_kwargs={"subfolder": ...})`). False
    when the checkpoint has none."""
    from transformers.utils import cached_file

    try:
        config = cached_file(str(source), "adapter_config.json", subfolder=subfolder,
                             _raise_exceptions_for_missing_entries=False)
    except OSError:
        config = None
    if config is None:
        return False
    model.load_adapter(str(source), adapter_name=name, adapter_kwargs={"subfolder": subfolder})
    return True


def activate(model: nn.Module, names: list[str]) -> None:
    """Exactly `names` active on every adapter layer of `model` (none: every adapter off), without touching any
    parameter's `requires_grad`."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        # peft's layer switches also set requires_grad (on for the active adapters, off for all when disabled):
        # put it back as it was.
        flags = [(p, p.requires_grad) for p in module.parameters()]
        module.enable_adapters(bool(names))
        if names:
            module.set_adapter(names)
        for param, flag in flags:
            param.requires_grad = flag


def is_adapter_parameter(param_name: str, adapter: str) -> bool:
    """Whether a parameter belongs to adapter `adapter` (peft names them `...lora_A.<adapter>.weight`)."""
    return re.search(rf"\.lora_\w+\.{re.escape(adapter)}(\.|$)", param_name) is not None


def base_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model`'s weights without any adapter: the state its class loads (adapter layers' `base_layer` unwrapped)."""
    state = {}
    for name, param in model.state_dict().items():
        if ".lora_" in name:
            continue
        state[name.replace(".base_layer.", ".")] = param
    return state


def save_model(model: nn.Module, folder: Path, subfolders: dict[str, str]) -> None:
    """Save a transformers model that carries built-in adapters as its checkpoint did: the base weights, and each
    adapter in PEFT format in its subfolder (`subfolders`: name -> subfolder, "" for the folder itself, where
    transformers loads it from by itself). transformers' own save would write the adapters only."""
    from huggingface_hub import save_torch_state_dict
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    # Written directly: transformers' save_pretrained renames the keys of a model with loaded adapters.
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    save_torch_state_dict({k: v.contiguous() for k, v in base_state(model).items()}, folder)
    for name in loaded(model):
        out = folder / subfolders.get(name, name)
        out.mkdir(parents=True, exist_ok=True)
        config = model.peft_config[name]
        config.base_model_name_or_path = str(folder)
        config.save_pretrained(out)
        state = get_peft_model_state_dict(model, adapter_name=name)
        state = {f"base_model.model.{k}": v.contiguous() for k, v in state.items()}  # PEFT's own key layout
        save_file(state, str(out / "adapter_model.safetensors"))
