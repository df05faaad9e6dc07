"""Audio-encoder outputs computed once per recording and reused (DESIGN.md, Speed).

When the audio encoder is frozen, its output for a recording never changes, so an
epoch over the same speech items need not run it again. Entries are keyed by the
recording (absolute path, size, modification time) and by the encoder's identity
(its config and a fingerprint of its weights), so a changed file or a different
encoder never reads a stale entry. Entries live in memory (on the CPU, so a large
cache does not take accelerator memory) and optionally in a folder on disk
(one safetensors file per entry) that later runs share.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors.torch import load_file, save

from slufit.files import atomic_open


def encoder_identity(named_parameters: Iterable[tuple[str, torch.Tensor]], config: Any = None, extra: str = "") -> str:
    """A short hash of an encoder's config, parameter names and shapes, and a fingerprint of its values."""
    digest = hashlib.sha1(extra.encode())
    if config is not None and hasattr(config, "to_json_string"):
        digest.update(config.to_json_string(use_diff=False).encode())
    with torch.no_grad():
        for name, param in named_parameters:
            p = param.detach().float()
            # sums and a few values: cheap, and they change when the weights change.
            stats = [p.sum().item(), (p * p).sum().item(), *p.flatten()[:4].tolist()]
            digest.update(f"{name}{tuple(p.shape)}{stats}".encode())
    return digest.hexdigest()[:16]


def recording_key(path: str | os.PathLike) -> int:
    """A 62-bit key for a recording file: its absolute path, size and modification time.

    An int, so that it travels in a batch tensor (and out of DataLoader workers).
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
        version = f"{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        version = "missing"
    return int(hashlib.sha1(f"{path}\0{version}".encode()).hexdigest()[:16], 16) >> 2


class EncoderCache:
    """Per-recording encoder outputs of one encoder, in memory and optionally on disk.

    `identity` names the encoder (see `encoder_identity`); with `disk_dir`, entries are
    also written to `disk_dir/<identity>/<key>.safetensors` and read back by later runs.
    """

    def __init__(self, identity: str, disk_dir: str | os.PathLike | None = None) -> None:
        self.identity = identity
        self.disk_dir = Path(disk_dir) / identity if disk_dir is not None else None
        self._memory: dict[int, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: int) -> torch.Tensor | None:
        value = self._memory.get(key)
        if value is None and self.disk_dir is not None:
            file = self.disk_dir / f"{key:016x}.safetensors"
            if file.is_file():
                value = load_file(file)["features"]
                self._memory[key] = value
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def peek(self, key: int) -> torch.Tensor | None:
        """Like `get`, without counting a hit or a miss (collate looks ahead with it)."""
        hits, misses = self.hits, self.misses
        value = self.get(key)
        self.hits, self.misses = hits, misses
        return value

    def put(self, key: int, features: torch.Tensor) -> None:
        value = features.detach().to("cpu").contiguous()
        self._memory[key] = value
        if self.disk_dir is not None:
            with atomic_open(self.disk_dir / f"{key:016x}.safetensors", "wb") as handle:
                handle.write(save({"features": value}))

    def __len__(self) -> int:
        return len(self._memory)
