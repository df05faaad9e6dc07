"""Which dtype the weights load in, per device and scheme (`model.dtype`), and generation under it.

    auto on the CPU                 float32 (bf16 matmuls are slow and lossy there)
    auto on a GPU, LoRA             bfloat16 base (frozen); peft keeps the adapters in float32
    auto on a GPU, full, DDP / 1    bfloat16 weights, gradients and AdamW states (what a copy per GPU can hold)
    auto on a GPU, full, FSDP       bfloat16 at load; slufit.train.distributed upcasts the trainable weights to
                                    float32 master copies before sharding them (the shards make them fit) and
                                    computes in bf16 (MixedPrecisionPolicy)

`train()`, the stage-end and final evaluations and `slufit eval` all load through `load_dtype`, so a
model is scored in the precision it trained in. docs/models.md says what sits in memory for each scheme.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from slufit.errors import SlufitError


def load_dtype(dtype: str, options: dict[str, Any], device: torch.device | str | None) -> torch.dtype:
    """The torch dtype `model.dtype` (or a legacy `model.options.dtype`) resolves to on `device`."""
    name = options.get("dtype", dtype) if dtype == "auto" else dtype
    if name in (None, "auto"):
        return torch.bfloat16 if torch.device(device or "cpu").type == "cuda" else torch.float32
    value = getattr(torch, str(name), None)
    if not isinstance(value, torch.dtype):
        raise SlufitError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return value


def load_options(config: Any, device: torch.device | str | None) -> dict[str, Any]:
    """`model.options` with the resolved dtype: what `load_model` gets from train() and `slufit eval`."""
    options = {k: v for k, v in config.model.options.items() if k != "dtype"}
    options["dtype"] = load_dtype(config.model.dtype, config.model.options, device)
    return options


def generation_precision(accelerator: Any):
    """The training run's autocast around generation (a no-op without mixed precision): fp32 master weights
    of a bf16 run generate in bf16 as they trained, not in fp32."""
    if accelerator is None or getattr(accelerator, "mixed_precision", "no") == "no":
        return contextlib.nullcontext()
    return accelerator.autocast()
