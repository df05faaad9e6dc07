"""The model families beyond Qwen2-Audio and Qwen2.5-Omni, one module each (its Family, hub ids, quirks
and tiny test builder); importing this package registers them with the adapter.

Each module defines FAMILY, MODELS (registry name -> hub id), SIZES (name -> nominal size), MODEL_TYPES
(the transformers `model_type`s it reads) and `tiny(texts)` (a random-weight model of its real class).
Gemma 3n is not here: see docs/models.md (its vision tower is a timm model, and timm needs torchvision,
which cannot be installed beside this torch).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from slufit.models.qwen2_audio import FAMILIES

FAMILY_MODULES = ["voxtral", "granite_speech", "audio_flamingo3", "qwen3_omni", "phi4_multimodal"]

MODULES: dict[str, ModuleType] = {}  # family name -> module
MODELS: dict[str, str] = {}  # registry name -> hub id
MODEL_TYPES: dict[str, ModuleType] = {}  # transformers model_type -> module
for _name in FAMILY_MODULES:
    _module = importlib.import_module(f"slufit.models.families.{_name}")
    FAMILIES[_module.FAMILY.name] = _module.FAMILY
    MODULES[_module.FAMILY.name] = _module
    MODELS.update(_module.MODELS)
    MODEL_TYPES.update({t: _module for t in _module.MODEL_TYPES})


def from_pretrained(source: str, model_type: str, **kwargs):
    """(model, tokenizer, processor or None, feature extractor) of a newer family from a folder or hub id.

    Not run against real checkpoints here (no hub access): the offline tests load folders these classes wrote.
    """
    import transformers
    from transformers import AutoFeatureExtractor, AutoTokenizer

    module = MODEL_TYPES[model_type]
    family = module.FAMILY
    trust = kwargs.get("trust_remote_code", False)
    if model_type == "qwen3_omni_moe":  # the full checkpoint: keep the thinker (text output), drop the talker
        full = transformers.Qwen3OmniMoeForConditionalGeneration.from_pretrained(source, **kwargs)
        model = full.thinker
        del full
    else:
        model = getattr(transformers, family.model_class).from_pretrained(source, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust)
    if family.load_feature_extractor is not None:
        feature_extractor = family.load_feature_extractor(source)
    else:
        feature_extractor = AutoFeatureExtractor.from_pretrained(source, trust_remote_code=trust)
    if getattr(tokenizer, "chat_template", None) is None:  # hub folders often keep it beside the processor only
        tokenizer.chat_template = module.CHAT_TEMPLATE
    processor = family.processor(feature_extractor, tokenizer) if family.processor is not None else None
    return model, tokenizer, processor, feature_extractor
