"""`tiny`, the embedded default: a CTC-bridge LALM (LegoSLM-style, arXiv 2505.11352).

Speech enters the language model in the space text lives in: for each unit the CTC head
recognises, the LM reads the posterior-weighted sum of its own unit embeddings, so what
fine-tuning on text teaches carries over to speech (issue 11; docs/tiny.md).

    units.py     character units, text normalisation, the LM vocabulary and compact SLU target
    ctc.py       the CTC head and its segments (what the LM reads for a recording)
    pretrain.py  `slufit pretrain`: the head trained on unlabelled speech, CER / WER, confusions
    simulate.py  simulated bridge vectors for text items, from the head's measured confusions
    model.py     BridgeSLU, the SLUModel: collate, loss, generate, save / load

The ears (a frozen Whisper encoder) live in slufit.models.ears, shared with any model that hears through Whisper.
"""
