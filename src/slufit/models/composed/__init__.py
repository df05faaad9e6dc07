"""`composed`: any Whisper encoder slufit's ears read + any transformers causal LM, joined by the tiny bridge's
CTC head (posteriors x the LLM's own character embeddings) or a trainable projector (docs/composed.md).

    load_model("composed")                                        # SmolLM2-135M-Instruct offline + tiny's bridge
    load_model("composed", llm="/models/Qwen2.5-1.5B-Instruct", lora={"r": 16}, simulate_text=0.5)
    load_model("runs/composed-text/model")                        # a saved run
"""

from slufit.models.composed.model import FAMILY, ComposedSLU, is_composed_folder, load_composed

__all__ = ["FAMILY", "ComposedSLU", "is_composed_folder", "load_composed"]
