"""Spelling correction of what the CTC head spelled, through its own measured readings of words.

The `transcript` connector hands the LLM the head's argmax spelling ("what is thetie in shiccoto"):
on SLURP test speech by held-out speakers that is CER ~21 % but WER ~68 %, since most words carry one
wrong letter, and a misspelt word falls apart into BPE pieces the LLM has seldom seen. The bridge's
lexicon sweep (slufit.models.bridge.readings) recorded how the head really spells ~10,000 frequent
words; read backwards, it is a noisy-channel table: a heard word that is a known reading of a word
becomes that word, and a heard word like a reading or a word (rapidfuzz ratio >= `cutoff`) becomes
the word it is most like. Words the sweep never heard, and runs the head merged or split, stay as
heard. The same correction is applied to simulated transcripts in training, so the LLM sees one
distribution of inputs.

`compound` (`lexicon_method: compound`) corrects the whole transcript at once instead, with SymSpell's
compound lookup (PyPI `symspellpy`, MIT): within two edits per word it also splits words the head merged
("thetie" -> "the tie") and merges words it split ("movi ss chedul" -> "movie schedule"), choosing among
the sweep's words by their frequency (wordfreq, the list the sweep was drawn from). Measured on
SLURP test speech (docs/composed.md): WER 56.5 % (readings) -> 51 % (compound).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import torch

from slufit.errors import SlufitError
from slufit.models.bridge.readings import Readings

DEFAULT_CUTOFF = 80.0  # measured on SLURP test speech: WER 68.1 % as spelled, 56.5 % at 80, 55.6 % at 70
METHODS = ("readings", "compound")
COMPOUND_EDITS = 2  # SymSpell's edit distance per word (3: no better on SLURP test speech, 3x slower)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise SlufitError(f"composed: lexicon_method must be one of {', '.join(METHODS)}, got {method!r}")


def spelled(dists: torch.Tensor, units: str) -> str:
    """The characters of a run of segments (or simulated rows): each one's most likely unit, spaces collapsed."""
    text = "".join(units[i] for i in dists.argmax(-1).tolist()) if len(dists) else ""
    return " ".join(text.split())


@dataclass
class Lexicon:
    """Heard spelling -> word, from the head's readings (see the module docstring)."""

    words: list[str]
    heard_as: dict[str, str]  # a reading's spelling -> the word it was most often a reading of
    cutoff: float = DEFAULT_CUTOFF
    method: str = "readings"
    language: str = "en"  # wordfreq's language of `words`, for the compound method's frequencies
    _known: set[str] = field(default_factory=set, init=False)
    _choices: list[str] = field(default_factory=list, init=False)
    _memo: dict[str, str] = field(default_factory=dict, init=False)
    _symspell: object = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_method(self.method)
        self._known = set(self.words)
        self._choices = sorted(self._known | set(self.heard_as))
        if self.method == "compound":
            try:
                from symspellpy import SymSpell
                from wordfreq import word_frequency
            except ImportError:
                raise SlufitError("composed: lexicon_method compound needs symspellpy and wordfreq: "
                                  "pip install 'slufit[composed]'") from None
            self._symspell = SymSpell(max_dictionary_edit_distance=COMPOUND_EDITS)
            for word in self.words:  # counts per 10^9 words: SymSpell prefers the more frequent of equal edits
                self._symspell.create_dictionary_entry(word, max(1, round(word_frequency(word, self.language) * 1e9)))

    @staticmethod
    def from_readings(readings: Readings, units: str, cutoff: float = DEFAULT_CUTOFF, method: str = "readings",
                      language: str = "en") -> "Lexicon":
        counts: dict[str, Counter] = defaultdict(Counter)
        for word, word_readings in readings.by_word().items():
            for reading in word_readings:
                counts[spelled(reading, units)][word] += 1
        heard_as = {heard: c.most_common(1)[0][0] for heard, c in counts.items() if heard}
        return Lexicon(list(readings.index), heard_as, cutoff, method, language)

    def word(self, heard: str) -> str:
        if heard in self._known:
            return heard
        if heard not in self._memo:
            best = self.heard_as.get(heard)
            if best is None and self._choices:
                from rapidfuzz import fuzz, process

                match = process.extractOne(heard, self._choices, scorer=fuzz.ratio, score_cutoff=self.cutoff)
                if match is not None:
                    best = self.heard_as.get(match[0], match[0])
            self._memo[heard] = best or heard
        return self._memo[heard]

    def correct(self, text: str) -> str:
        if self._symspell is not None:
            return self._compound(text)
        return " ".join(self.word(w) for w in text.split())

    def _compound(self, text: str) -> str:
        if not text.strip():
            return ""
        if text not in self._memo:
            found = self._symspell.lookup_compound(text, max_edit_distance=COMPOUND_EDITS)
            self._memo[text] = found[0].term if found else text
            if len(self._memo) > 200_000:  # simulated transcripts seldom repeat: keep the memo bounded
                self._memo.clear()
        return self._memo[text]
