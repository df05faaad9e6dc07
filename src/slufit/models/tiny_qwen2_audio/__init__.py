"""The previous embedded default, `tiny-qwen2-audio`: a scaled-down Qwen2AudioForConditionalGeneration.

A Whisper tiny.en encoder (frozen) and a 2-layer Qwen2 language model pretrained here to
transcribe templated speech (`slufit pretrain --model tiny-qwen2-audio`). Kept as history
and as a real Qwen2-Audio code path on a CPU: at the demo's sizes it does not carry what it
learns from text over to speech (docs/embedded_regime.md), which is why `tiny` is now the
CTC-bridge model (slufit.models.bridge).

    build.py     the model and its processor, save / load, cached encoder outputs
    pretrain.py  speech -> transcript pretraining, cached by a hash
"""
