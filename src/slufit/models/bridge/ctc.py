"""The CTC bridge head: 25 Hz Whisper frames -> per-frame posteriors over character units.

    dropout -> Linear(d_in, d) -> residual conv-5 -> pre-norm transformer layer(s)
            -> x2 upsampling (25 Hz is tight for characters) -> LayerNorm -> Linear(d, units + blank)

It is trained with CTC on unlabelled speech only (slufit.models.bridge.pretrain). What the
language model then reads for a recording are its *segments*: frames whose argmax is blank
are dropped, each run of consecutive frames with the same argmax is averaged, the blank
column is removed and the rest renormalised. A segment is a distribution over units, and
the language model turns it into the posterior-weighted sum of its own unit embeddings
(slufit.models.bridge.model), so speech arrives in the space text lives in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

BLANK = 0  # CTC blank is output 0; unit k of the head's alphabet is output k + 1


@dataclass(frozen=True)
class HeadSizes:
    """Sizes of the CTC head (the defaults are what issue 11's prototype measured)."""

    d: int = 256
    heads: int = 4
    layers: int = 1
    conv_kernel: int = 5
    upsample: int = 2
    dropout: float = 0.1


class CTCHead(nn.Module):
    def __init__(self, d_in: int, n_units: int, sizes: HeadSizes = HeadSizes()) -> None:
        super().__init__()
        self.sizes, self.n_units = sizes, n_units
        self.dropout = nn.Dropout(sizes.dropout)
        self.proj = nn.Linear(d_in, sizes.d)
        self.conv = nn.Conv1d(sizes.d, sizes.d, sizes.conv_kernel, padding=sizes.conv_kernel // 2)
        layer = nn.TransformerEncoderLayer(sizes.d, sizes.heads, 4 * sizes.d, sizes.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, sizes.layers, enable_nested_tensor=False)
        self.up = nn.Linear(sizes.d, sizes.upsample * sizes.d)
        self.norm = nn.LayerNorm(sizes.d)
        self.out = nn.Linear(sizes.d, n_units + 1)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames [batch, T, d_in], lengths [batch] -> log-posteriors [batch, T * upsample, units + 1], lengths."""
        x = self.proj(self.dropout(frames))
        x = x + F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        pad = torch.arange(x.shape[1], device=x.device)[None, :] >= lengths[:, None]
        x = self.encoder(x, src_key_padding_mask=pad)
        batch, steps, d = x.shape
        x = self.up(x).reshape(batch, steps * self.sizes.upsample, d)
        return F.log_softmax(self.out(self.norm(x)), dim=-1), lengths * self.sizes.upsample

    def config(self) -> dict:
        return {"d_in": self.proj.in_features, "n_units": self.n_units, "sizes": asdict(self.sizes)}

    @staticmethod
    def from_config(config: dict) -> "CTCHead":
        return CTCHead(config["d_in"], config["n_units"], HeadSizes(**config["sizes"]))


def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([f.shape[0] for f in frames])
    out = frames[0].new_zeros(len(frames), int(lengths.max()), frames[0].shape[1])
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out, lengths


@torch.no_grad()
def posteriors(head: CTCHead, frames: list[torch.Tensor], batch_size: int = 64) -> list[torch.Tensor]:
    """Per-frame posteriors [steps, units + 1] of each clip (eval mode, batched by length)."""
    was_training = head.training
    head.eval()
    order = sorted(range(len(frames)), key=lambda i: frames[i].shape[0])
    out: list[torch.Tensor | None] = [None] * len(frames)
    for start in range(0, len(order), batch_size):
        chunk = order[start: start + batch_size]
        x, lengths = pad_frames([frames[i] for i in chunk])
        logp, out_lengths = head(x, lengths)
        for row, i in enumerate(chunk):
            out[i] = logp[row, : int(out_lengths[row])].exp()
    head.train(was_training)
    return out


def greedy_units(post: torch.Tensor) -> list[int]:
    """Best-path decoding: argmax per frame, repeats collapsed, blanks removed (0-based unit indices)."""
    best = post.argmax(-1).tolist()
    out, previous = [], BLANK
    for b in best:
        if b != BLANK and b != previous:
            out.append(b - 1)
        previous = b
    return out


def segments(post: torch.Tensor) -> torch.Tensor:
    """The bridge's segments of one clip: [n_segments, units], each a distribution over units.

    A run is a maximal stretch of consecutive frames with the same non-blank argmax; a blank frame ends a
    run, so a doubled letter ("ll", spelled l-blank-l by CTC) stays two segments. An all-blank clip gives
    zero segments (the caller decides what an empty input means)."""
    best = post.argmax(-1)
    keep = best != BLANK
    if not bool(keep.any()):
        return post.new_zeros(0, post.shape[1] - 1)
    starts = torch.ones_like(best, dtype=torch.bool)
    starts[1:] = best[1:] != best[:-1]
    run_id = torch.cumsum(starts.long(), 0) - 1
    runs = int(run_id[-1]) + 1
    sums = post.new_zeros(runs, post.shape[1]).index_add_(0, run_id, post)
    counts = torch.bincount(run_id, minlength=runs).to(post.dtype)
    run_best = torch.zeros(runs, dtype=best.dtype).index_copy_(0, run_id, best)
    averaged = sums / counts[:, None]
    averaged = averaged[run_best != BLANK][:, 1:]
    return averaged / averaged.sum(-1, keepdim=True).clamp_min(1e-8)


def time_mask(frames: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator, spans: int = 2,
              width: int = 4) -> torch.Tensor:
    """SpecAugment-style time masking on encoder frames: `spans` stretches of up to `width` frames zeroed."""
    frames = frames.clone()
    for i, n in enumerate(lengths.tolist()):
        for _ in range(spans):
            w = int(torch.randint(0, width + 1, (1,), generator=generator))
            if w and n > w:
                s = int(torch.randint(0, n - w, (1,), generator=generator))
                frames[i, s: s + w] = 0
    return frames


def channel_mask(frames: torch.Tensor, generator: torch.Generator, spans: int = 2, width: int = 32) -> torch.Tensor:
    """SpecAugment-style masking across channels: per clip, `spans` bands of up to `width` encoder channels
    zeroed over the whole clip (the frequency masks of SpecAugment, on the frozen encoder's features)."""
    frames = frames.clone()
    channels = frames.shape[-1]
    for i in range(frames.shape[0]):
        for _ in range(spans):
            w = int(torch.randint(0, width + 1, (1,), generator=generator))
            if w and channels > w:
                s = int(torch.randint(0, channels - w, (1,), generator=generator))
                frames[i, :, s: s + w] = 0
    return frames
