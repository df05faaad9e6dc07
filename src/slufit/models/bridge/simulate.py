"""Simulated bridge vectors: text items fed to the language model the way the bridge hears speech.

A text-only method (it spends no labelled speech): each character of a text item is
passed through the CTC head's own error model, measured on unlabelled clips the head
never trained on (slufit.models.bridge.pretrain.confusions), and each emitted unit is
given as the head's mean posterior row for that unit. The language model thus learns
the labels from inputs that look like what the bridge produces, misspellings included.

`scale` multiplies the measured error rates (1: as measured; 0: clean units, but still
as posterior rows). `context=True` draws each character's output from the head's
confusions *given its left and right neighbours* (`emit_context`, smoothed towards the
character's own row where the held-out clips saw that context rarely): the head's errors
are phonetic ("lunden" for "london", a silent final "e" dropped), so they depend on the
spelling around a letter, not on the letter alone.
"""

from __future__ import annotations

import bisect

import torch

from slufit.models.bridge.readings import Readings


def simulate(units: list[int], stats: dict[str, torch.Tensor], scale: float = 1.0,
             context: bool = False) -> torch.Tensor:
    """Distributions [n, head units] for a sequence of head-unit indices (torch's global RNG: a resumed
    run draws the same corruptions, since checkpoints restore it)."""
    rows, _ = _simulate(units, stats, scale, context)
    return rows


def simulate_with_readings(units: list[int], stats: dict[str, torch.Tensor], readings: Readings,
                           words: list[str], share: float, scale: float = 1.0, context: bool = False) -> torch.Tensor:
    """`simulate`, then each word that has real readings (slufit.models.bridge.readings) takes, with
    probability `share`, one of them in place of its simulated segments. `words` are the words of `units`
    (split at its spaces), in order; the word breaks stay simulated."""
    rows, positions = _simulate(units, stats, scale, context)
    positions = positions.tolist()
    pieces, start = [], 0
    for word in words:
        end = start + len(word)  # the word's reference positions [start, end), its break at `end`
        lo, hi = bisect.bisect_left(positions, start), bisect.bisect_left(positions, end)
        brk = bisect.bisect_left(positions, end + 1)
        if word in readings and float(torch.rand(())) < share:
            pieces.append(readings.draw(word))
        else:
            pieces.append(rows[lo:hi])
        pieces.append(rows[hi:brk])
        start = end + 1
    return torch.cat(pieces) if pieces else rows


def _simulate(units: list[int], stats: dict[str, torch.Tensor], scale: float,
              context: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The simulated rows and, for each, the reference position it was emitted for (ascending)."""
    emit, insert, rows = stats["emit"], stats["insert"], stats["rows"]
    n_units = rows.shape[0]
    if not units:
        return rows.new_zeros(0, n_units), torch.zeros(0, dtype=torch.long)
    refs = torch.tensor(units)
    if context:  # neighbours, the text's edges as index n_units
        edge = torch.tensor([n_units])
        left, right = torch.cat([edge, refs[:-1]]), torch.cat([refs[1:], edge])
        probs = stats["emit_context"][left, refs, right].clone()
    else:
        probs = emit[refs].clone()  # [n, units + 1]: each emitted unit, or deletion (last column)
    if scale != 1.0:  # scale the error mass, keep its shape
        keep = probs.gather(1, refs[:, None])
        errors = 1.0 - keep
        probs = probs * scale
        probs.scatter_(1, refs[:, None], (1.0 - errors * scale).clamp_min(0.0))
    emitted = torch.multinomial(probs.clamp_min(0), 1).squeeze(1)
    inserted = torch.rand(len(units)) < float(insert[-1]) * scale
    extra = torch.multinomial(insert[:-1].clamp_min(1e-12), len(units), replacement=True)
    # Interleave: each reference position gives its emitted unit (unless deleted), then its insertion (if any).
    sequence = torch.stack([emitted, torch.where(inserted, extra, torch.full_like(extra, n_units))], 1).flatten()
    positions = torch.arange(len(units)).repeat_interleave(2)
    kept = sequence < n_units
    return rows[sequence[kept]], positions[kept]
