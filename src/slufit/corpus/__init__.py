"""The embedded multilingual SLU corpus (templated, SLURP label space). See `generator`."""

from slufit.corpus.generator import LOCALES, build_corpus, corpus_stats, load_locale

__all__ = ["LOCALES", "build_corpus", "corpus_stats", "load_locale"]
