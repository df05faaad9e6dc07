"""A bridge folder for tests: the real ears (Whisper tiny.en, offline) under a small random CTC head.

Only the head's weights are random (a test double inside the tests); everything else is what
`slufit pretrain` writes, so `load_model` reads it through the real code path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from slufit.files import write_json
from slufit.models.bridge import ctc
from slufit.models.bridge.units import Vocabulary, alphabet

SMALL_HEAD = {"d": 32, "heads": 2, "layers": 1, "conv_kernel": 5, "upsample": 2, "dropout": 0.0}
SMALL_LM = {"hidden": 32, "layers": 1, "heads": 2, "kv_heads": 1, "intermediate": 64}


def make_bridge(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    units = alphabet(["en-US"]) + " "
    head = ctc.CTCHead(384, len(units), ctc.HeadSizes(**SMALL_HEAD))
    with torch.no_grad():  # a head that emits units, not only blanks: lower the blank logit
        head.out.bias[ctc.BLANK] -= 3.0
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / "bridge.safetensors"))
    n = len(units)
    emit = torch.cat([torch.eye(n) * 0.8 + 0.2 / n, torch.full((n, 1), 0.0)], 1)
    emit = emit / emit.sum(-1, keepdim=True)
    stats = {"emit": emit, "insert": torch.cat([torch.full((n,), 1.0 / n), torch.tensor([0.05])]),
             "rows": torch.softmax(torch.eye(n) * 4, -1)}
    save_file(stats, str(folder / "confusions.safetensors"))
    vocab = Vocabulary.for_locales(["en-US", "fr-FR"])
    write_json(folder / "bridge.json", {"head": head.config(), "units": units, "ears": None, "window_s": 5,
                                        "vocabulary": vocab.to_dict()})
    return folder
