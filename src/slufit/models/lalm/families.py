"""The LALM families, one module each beside this one, in one literal dict; and loading a model of any of them.

Each family module defines FAMILY (its `Family`), MODELS (registry name -> hub id), SIZES (name -> nominal
size), MODEL_TYPES (the transformers `model_type`s it reads), CHAT_TEMPLATE (for a folder that carries none)
and `tiny(texts)` or a builder in slufit.models.lalm.testing (a random-weight model of its real class).
Imports run one way: this module imports the families and the adapter; the families import the adapter;
the adapter imports neither. Gemma 3n is not here: see docs/models.md (its vision tower is a timm model, and
timm needs torchvision, which cannot be installed beside this torch).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from slufit.errors import SlufitError
from slufit.models.lalm import (audio_flamingo3, granite_speech, phi4_multimodal, qwen2_5_omni, qwen2_audio,
                                qwen3_omni, voxtral)
from slufit.models.lalm import builtin_adapters
from slufit.models.lalm.adapter import Family, LALMAdapter, is_mistral_common, saved_family
from slufit.models.lalm.adapter import load_saved as _load_saved

# family name -> its module; the order is the order `slufit models` lists them in.
MODULES: dict[str, ModuleType] = {module.FAMILY.name: module for module in (
    qwen2_audio, qwen2_5_omni, voxtral, granite_speech, audio_flamingo3, qwen3_omni, phi4_multimodal)}
FAMILIES: dict[str, Family] = {name: module.FAMILY for name, module in MODULES.items()}
MODELS: dict[str, str] = {name: hub for module in MODULES.values() for name, hub in module.MODELS.items()}
MODEL_TYPES: dict[str, ModuleType] = {t: module for module in MODULES.values() for t in module.MODEL_TYPES}


def family_for(model: nn.Module) -> Family:
    """The family of a transformers model, by its class."""
    name = type(model).__name__
    for family in FAMILIES.values():
        if family.model_class == name:
            return family
    raise SlufitError(f"no slufit adapter for {name}; supported: {', '.join(f.model_class for f in FAMILIES.values())}")


def module_of(name: str) -> ModuleType | None:
    """The family module that registers the model name `name` (a key of MODELS), if any."""
    for module in MODULES.values():
        if name in module.MODELS:
            return module
    return None


def load_saved(path: Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
               **options) -> LALMAdapter:
    """Load a folder `LALMAdapter.save` wrote, whichever family saved it."""
    name = saved_family(path)
    if name not in FAMILIES:
        raise SlufitError(f"{path}: saved by an unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return _load_saved(path, FAMILIES[name], device=device, dtype=dtype, **options)


def from_pretrained(source: str, model_type: str, **kwargs):
    """(family, model, tokenizer, processor or None, feature extractor) from a transformers folder or hub id.

    Not run against real checkpoints here (no hub access): the offline tests load folders these classes wrote.
    """
    import transformers
    from transformers import AutoFeatureExtractor, AutoTokenizer

    module = MODEL_TYPES[model_type]
    family = module.FAMILY
    trust = kwargs.get("trust_remote_code", False)
    full = getattr(module, "FULL_CHECKPOINT", {}).get(model_type)
    if full is not None:  # an Omni checkpoint: keep the thinker (text output), drop the speech generator
        whole = getattr(transformers, full).from_pretrained(source, **kwargs)
        model = whole.thinker
        del whole
    else:
        model = getattr(transformers, family.model_class).from_pretrained(source, **kwargs)
    if family.audio_adapter is not None and family.audio_adapter[1]:  # kept in a subfolder: loaded as its card does
        builtin_adapters.load(model, *family.audio_adapter, source=source)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust)
    if family.load_feature_extractor is not None:
        feature_extractor = family.load_feature_extractor(source)
    else:
        feature_extractor = AutoFeatureExtractor.from_pretrained(source, trust_remote_code=trust)
    # Hub folders often keep the template beside the processor only; a mistral-common tokenizer (Voxtral's) has
    # none and needs none (its own request API renders the turns).
    if getattr(tokenizer, "chat_template", None) is None and not is_mistral_common(tokenizer):
        tokenizer.chat_template = _processor_chat_template(source) or module.CHAT_TEMPLATE
    processor = family.processor(feature_extractor, tokenizer) if family.processor is not None else None
    return family, model, tokenizer, processor, feature_extractor


def _processor_chat_template(source: str) -> str | None:
    """The checkpoint's own chat template where it is kept beside the processor (chat_template.jinja or
    chat_template.json), as on the hub for Qwen2-Audio and the Omni models; None when there is none."""
    import json

    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            path = cached_file(source, name, _raise_exceptions_for_missing_entries=False)
        except OSError:
            path = None
        if path is not None:
            text = Path(path).read_text()
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return None
