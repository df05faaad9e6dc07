"""The one interface every model implements, and the item it consumes.

The trainer and the evaluator only ever talk to a model through `SLUModel`;
schemes decide which `SLUItem`s flow in and when, never how a model builds
its prompt. A batch always holds items of one modality (DESIGN.md, Speed:
text batches never run the audio encoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence, runtime_checkable

import torch

from slufit.data.example import Example

Modality = Literal["text", "speech"]


@dataclass(frozen=True)
class SLUItem:
    """One training or evaluation item: an example seen as text or as one of its recordings."""

    example: Example
    modality: Modality
    # Absolute path of the recording for speech items (see slufit.data.example.resolve_audio); None for text.
    audio_path: Path | None = None
    speaker: str | None = None

    def __post_init__(self) -> None:
        if (self.modality == "speech") != (self.audio_path is not None):
            raise ValueError("a speech item needs an audio_path and a text item must not have one")


@runtime_checkable
class SLUModel(Protocol):
    """An LALM fine-tuned for SLU. Implementations: slufit.models.lalm.adapter (every transformers LALM family) and
    slufit.models.bridge.model (the tiny default)."""

    # The torch module that holds every parameter: what the optimizer and accelerate see.
    module: torch.nn.Module

    def collate(self, items: Sequence[SLUItem], with_targets: bool = True) -> dict[str, torch.Tensor]:
        """Tensors for one batch of same-modality items. With targets, `labels` masks everything but the target."""
        ...

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over target tokens only (the prompt never counts)."""
        ...

    def generate(self, items: Sequence[SLUItem], num_beams: int = 1, max_new_tokens: int = 128) -> list[str]:
        """Generated text for each item (batched, left-padded, KV cache), without the prompt."""
        ...

    def set_trainable(self, audio_encoder: bool, projector: bool, language_model: bool) -> None:
        """Freeze or unfreeze the three parts of the model (with LoRA, 'language_model' means its adapters)."""
        ...

    def save(self, out_dir: Path) -> None:
        """Write weights (safetensors; LoRA adapters via peft) and whatever `load` needs."""
        ...

    # Optional, not part of the protocol check: `begin_stage(items)`, called by the trainer as each stage starts
    # (also when a run resumes into it) with the stage's items. The tiny bridge uses it (speech_readings).
