"""slufit: fine-tune large audio language models for spoken language understanding
when text-label pairs are plentiful and speech-label pairs are scarce.

Data flow (see README and DESIGN.md):

    dataset files / embedded corpus      -> slufit.data (canonical examples), slufit.corpus
    speech for a budgeted subset         -> slufit.speech (TTS), slufit.data.budget
    scheme = schedule of stages          -> slufit.train.schemes
    trainer -> model adapter             -> slufit.train.loop, slufit.models
    evaluation -> SLURP scorer + CIs     -> slufit.scoring
    grid -> results table, report, plots -> slufit.grid
"""

__version__ = "0.1.0"
