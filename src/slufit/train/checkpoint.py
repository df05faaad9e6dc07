"""Checkpoints: RUN_DIR/checkpoints/last/, written atomically, enough to resume exactly.

accelerate's `save_state` writes the model (safetensors), the optimizer, the scheduler and
every process's RNG states (python, numpy, torch, cuda), and works under DDP; under FSDP2 the model
and optimizer shards are written by torch.distributed.checkpoint into last/sharded/ (each rank its own,
slufit.train.distributed) and accelerate keeps the rest; `TrainState` (registered for checkpointing)
adds where the run stands: stage,
batch index within the stage (the sampler's whole state, see slufit.train.sampler),
optimizer step, stage-end metrics and training time so far.

Atomicity: the state is written to a temporary folder beside `last/`, then renamed over it
(`last/` -> `last.old/`, temp -> `last/`, remove `last.old/`), so a kill at any moment leaves
either the previous or the new checkpoint, never half of one.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from accelerate import Accelerator

LAST = "last"


@dataclass
class TrainState:
    """Where a run stands; saved in every checkpoint."""

    # Index of the current stage and of the next batch to train within it.
    stage: int = 0
    batch: int = 0
    # Optimizer steps done over the whole run (the scheduler's clock).
    step: int = 0
    # Stage-end evaluations so far: [{"stage": name, "step": n, "metrics": {eval name: metrics}}].
    stages_done: list[dict[str, Any]] = field(default_factory=list)
    # Seconds spent training and evaluating, summed over interruptions.
    train_seconds: float = 0.0
    # Names of the parameters the optimizer holds (a warm start must hold the same ones).
    trainable: list[str] = field(default_factory=list)
    # The run whose checkpoint this run started from (slufit.train.loop.warm_start_mismatch), if any.
    warm_start: str | None = None

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def checkpoint_dir(run_dir: Path) -> Path:
    """The checkpoint to resume from: last/, or last.old/ if a kill fell between the two renames."""
    root = Path(run_dir) / "checkpoints"
    for name in (LAST, LAST + ".old"):
        if (root / name / "train_state.json").is_file():
            return root / name
    return root / LAST


def save_checkpoint(accelerator: Accelerator, run_dir: Path, state: TrainState, sharded: tuple | None = None) -> Path:
    """Write checkpoints/last/ atomically (every process must call this). `sharded`: (FSDP module, optimizer),
    whose shards each rank writes under last/sharded/ (slufit.train.distributed)."""
    from slufit.files import write_json

    root = Path(run_dir) / "checkpoints"
    tmp, last, old = root / f".{LAST}.tmp", root / LAST, root / f"{LAST}.old"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(output_dir=str(tmp))
    if sharded is not None:
        from slufit.train.distributed import save_sharded

        save_sharded(tmp, *sharded)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        # Written last: a folder without it is incomplete and never resumed from.
        write_json(tmp / "train_state.json", state.state_dict())
        if last.exists():
            shutil.rmtree(old, ignore_errors=True)
            last.rename(old)
        tmp.rename(last)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return last


def damaged_checkpoint(folder: Path) -> str | None:
    """Why checkpoint `folder` cannot be read (naming the file), or None when its files look whole.

    Reads only what is cheap: every safetensors header and train_state.json. A truncated or
    overwritten file (a full disk, a copy cut short) is found here, before accelerate fails on it
    with a bare library error that names no file.
    """
    from safetensors import safe_open

    from slufit.files import read_json

    for file in sorted(Path(folder).rglob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except Exception as err:  # safetensors raises its own error types  # noqa: BLE001
            return f"{file}: damaged checkpoint file ({type(err).__name__}: {err})"
    try:
        read_json(Path(folder) / "train_state.json")
    except (OSError, ValueError) as err:
        return f"{Path(folder) / 'train_state.json'}: damaged checkpoint file ({err})"
    return None


def load_checkpoint(accelerator: Accelerator, run_dir: Path, sharded: tuple | None = None) -> bool:
    """Restore model, optimizer, scheduler, RNG states and the registered TrainState; False if none.
    `sharded`: (FSDP module, optimizer), read back from last/sharded/ (slufit.train.distributed).

    A damaged checkpoint raises SlufitError naming the file (nothing is deleted: the user decides).
    """
    from slufit.errors import SlufitError

    folder = checkpoint_dir(run_dir)
    if not (folder / "train_state.json").is_file():
        return False
    reason = damaged_checkpoint(folder)
    if reason is None:
        try:
            accelerator.load_state(str(folder))
            if sharded is not None:
                from slufit.train.distributed import load_sharded

                load_sharded(folder, *sharded)
            return True
        except Exception as err:  # a damaged optimizer / RNG pickle  # noqa: BLE001
            reason = f"{folder}: damaged checkpoint ({type(err).__name__}: {err})"
    raise SlufitError(f"{reason}; remove {Path(run_dir) / 'checkpoints'} to train this run from its beginning")
