"""Several processes: DDP through accelerate, FSDP2 through torch's `fully_shard`, applied by slufit itself.

Why slufit shards the model itself: accelerate 1.16 refuses FSDP on the CPU (its FSDP state is only set
up for GPU-like devices), so the code that trains sharded on 8 GPUs could not be the code tested on two
CPU processes. With an FSDP accelerate config (`distributed_type: FSDP`, `fsdp_version: 2`), `accelerate
launch` sets ACCELERATE_USE_FSDP; `fsdp_settings` takes that flag out of the environment before the
Accelerator is built, so accelerate provides the processes, the device and the RNG / scheduler
checkpointing, and this module provides the rest, the same on NCCL and on gloo (SLUFIT_FSDP=1 asks for
it under torchrun):

- `shard_model`: `fully_shard` on every module whose class the model names in its own `_no_split_modules`
  (the union over its transformers models: decoder layers, encoder layers), then on the root. Parameters
  no stage trains in the audio-encoder part (a frozen encoder, the tiny bridge's CTC head) stay outside
  the shards (`ignored_params`): replicated, so the per-recording encoder cache can miss on one rank and
  hit on another without a collective. When a stage trains the encoder it is sharded, and the cache is
  turned off (`encoder_cache_allowed`): every rank then runs the encoder on every speech batch.
- Generation: `full_root` gathers the root's own parameters (embeddings, head, projector) for the whole
  evaluation; each layer gathers its own in its forward. Every rank enters every generate call with the
  same number of batches (slufit.train.evaluate.generate_all) and transformers' `synced_gpus` keeps the
  ranks stepping together until all are done (`_is_fsdp_managed_module`).
- Saving: `full_state_dict` gathers a full (unsharded, CPU) state dict on the main process, which loads it
  into a fresh copy of the model and saves that as an ordinary safetensors model (`slufit eval` loads it on
  one process).
- Checkpoints: `save_sharded` / `load_sharded` write and read the model and optimizer shards with
  torch.distributed.checkpoint (each rank its own), beside accelerate's state (RNG, scheduler, TrainState).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from slufit.errors import SlufitError

SHARDED = "sharded"  # the checkpoint subfolder of the model and optimizer shards


@dataclass(frozen=True)
class FSDPSettings:
    """What the launcher's FSDP section asks for."""

    # Free each layer's gathered parameters after its forward (less memory, one more all-gather in backward).
    reshard_after_forward: bool = True
    # Keep the shards and optimizer states in CPU memory between uses.
    cpu_offload: bool = False


_SETTINGS: list[FSDPSettings | None] = []


def fsdp_settings() -> FSDPSettings | None:
    """FSDP2 settings when the launcher asks for FSDP, else None (read once per process; see the module doc)."""
    if _SETTINGS:
        return _SETTINGS[0]
    flag = lambda name, default="false": os.environ.get(name, default).lower() in ("1", "true")  # noqa: E731
    use = flag("ACCELERATE_USE_FSDP") or flag("SLUFIT_FSDP")
    os.environ.pop("ACCELERATE_USE_FSDP", None)
    settings = None
    if use:
        if os.environ.get("FSDP_VERSION", "2") != "2":
            raise SlufitError("slufit trains under FSDP2 only: set `fsdp_version: 2` in the accelerate config "
                              "(configs/accelerate/8gpu_fsdp.yaml)")
        settings = FSDPSettings(reshard_after_forward=flag("FSDP_RESHARD_AFTER_FORWARD", "true"),
                                cpu_offload=flag("FSDP_OFFLOAD_PARAMS"))
    _SETTINGS.append(settings)
    return settings


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def encoder_parameters(model: Any) -> list[nn.Parameter]:
    """The audio-encoder part's parameters: the LALM family's encoder, or the tiny bridge's CTC head."""
    if hasattr(model, "family"):
        return list(model.family.encoder_of(model.module.hf).parameters())
    head = getattr(model.module, "head", None)
    return list(head.parameters()) if head is not None else []


def encoder_cache_allowed(model: Any, encoder_trains: bool) -> None:
    """Under FSDP an encoder some stage trains is sharded: no rank may then run it alone on a cache miss."""
    if encoder_trains and hasattr(model, "use_encoder_cache"):
        model.use_encoder_cache = False


def wrap_classes(module: nn.Module) -> set[str]:
    """The union of `_no_split_modules` of the transformers models inside `module` (their own wrap policy)."""
    names: set[str] = set()
    for sub in module.modules():
        names |= set(getattr(sub, "_no_split_modules", None) or ())
    present = {type(sub).__name__ for sub in module.modules()}
    return names & present


def wrap_units(module: nn.Module) -> list[str]:
    """Names of the outermost submodules whose class is a wrap class (a layer, not the attention inside it)."""
    classes = wrap_classes(module)
    chosen: list[str] = []
    for name, sub in module.named_modules():
        if type(sub).__name__ in classes and not any(name.startswith(c + ".") for c in chosen):
            chosen.append(name)
    return chosen


def shard_model(module: nn.Module, settings: FSDPSettings, ignored: Iterable[nn.Parameter],
                mixed_precision: str, device: torch.device) -> nn.Module:
    """`fully_shard` in place: the outermost modules of the model's own wrap classes, then the root."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    ignored = set(ignored)
    compute = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    if compute is not None:
        # fp32 master copies of what trains (the shards make them fit); compute in `compute`.
        for param in module.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    module.to(device)
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    kwargs = dict(mesh=mesh, mp_policy=MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32
                                                            if compute else None),
                  offload_policy=CPUOffloadPolicy() if settings.cpu_offload else OffloadPolicy())
    chosen = wrap_units(module)
    if not chosen:
        raise SlufitError(f"{type(module).__name__}: its transformers models name no _no_split_modules to shard by")
    for name in reversed(chosen):  # bottom-up, as fully_shard wants
        sub = module.get_submodule(name)
        own = list(sub.parameters())
        if own and all(p in ignored for p in own):
            continue  # a frozen encoder's layers stay whole, outside the shards
        fully_shard(sub, reshard_after_forward=settings.reshard_after_forward, **kwargs)
    fully_shard(module, ignored_params=ignored or None, **kwargs)
    from transformers import PreTrainedModel

    for sub in module.modules():  # transformers' generate then steps all ranks together (synced_gpus)
        if isinstance(sub, PreTrainedModel):
            sub._is_fsdp_managed_module = True
    return module


def gradient_sync(module: nn.Module, accelerator: Any, sync: bool):
    """No gradient reduction on the micro-batches before the last of an optimizer step."""
    if is_sharded(module):
        module.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    return contextlib.nullcontext() if sync else accelerator.no_sync(module)


def clip_gradients(module: nn.Module, params: list[nn.Parameter], accelerator: Any, max_norm: float) -> None:
    if is_sharded(module):
        torch.nn.utils.clip_grad_norm_(params, max_norm)  # the norm of DTensor shards is reduced over ranks
    else:
        accelerator.clip_grad_norm_(params, max_norm)


@contextlib.contextmanager
def full_root(module: nn.Module):
    """The root's own parameters gathered while the adapter generates (layers gather in their forward)."""
    if not is_sharded(module):
        yield
        return
    module.unshard()
    try:
        yield
    finally:
        module.reshard()


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict on the main process (CPU tensors), {} on the others; every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_full_model(model: Any, module: nn.Module, load: Any, load_args: tuple, out_dir: Path,
                    trained_parts: dict[str, bool], main: bool) -> None:
    """Save a sharded model as an ordinary one: gather it, load it into a fresh copy, save that."""
    state = full_state_dict(module)
    if not main:
        return
    fresh = load(*load_args[0], **load_args[1])
    fresh.set_trainable(**trained_parts)  # the same parameters (LoRA layers) and the same parts to save
    missing, unexpected = fresh.module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SlufitError(f"the gathered state dict does not fit a fresh model: missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}")
    for attr in ("readings", "_lexicon"):  # the tiny bridge's word readings travel with its save
        if hasattr(model, attr):
            setattr(fresh, attr, getattr(model, attr))
    fresh.save(out_dir)


def _dcp_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(module, optimizer)
    return {"model": model_state, "optimizer": optim_state}


def save_sharded(folder: Path, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Each rank writes its shards of the model and optimizer (torch.distributed.checkpoint)."""
    import torch.distributed.checkpoint as dcp

    dcp.save(_dcp_state(module, optimizer), checkpoint_id=str(Path(folder) / SHARDED))


def load_sharded(folder: Path, module: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Read back what `save_sharded` wrote. Parameters a checkpoint holds no optimizer state for (frozen in
    every stage so far, e.g. a curriculum's encoder during its text stage) are left without state, as they
    are in a run never interrupted (torch initialises every state by a zero step before loading, which
    would start their AdamW step count at 1)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
    from torch.distributed.checkpoint.state_dict import set_state_dict

    path = str(Path(folder) / SHARDED)
    saved = FileSystemReader(path).read_metadata().state_dict_metadata
    state = _dcp_state(module, optimizer)
    dcp.load(state, checkpoint_id=path, planner=DefaultLoadPlanner(allow_partial_load=True))
    set_state_dict(module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    prefix = "optimizer.state."
    with_state = {key[len(prefix):].rsplit(".", 1)[0] for key in saved if key.startswith(prefix)}
    for name, param in module.named_parameters():
        if name not in with_state:
            optimizer.state.pop(param, None)


def close(accelerator: Any) -> None:
    """End the run and destroy the process group, so that no rank aborts in teardown."""
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
