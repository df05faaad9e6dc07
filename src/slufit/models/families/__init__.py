"""The model families beyond Qwen2-Audio and Qwen2.5-Omni, one module each (its Family, hub ids, quirks
and tiny test builder); importing this package registers them with the adapter.

`FAMILY_MODULES` is the literal list; `MODELS` gathers their registry names -> hub ids.
"""

from __future__ import annotations

import importlib

from slufit.models.qwen2_audio import FAMILIES

FAMILY_MODULES = ["audio_flamingo3", "qwen3_omni", "voxtral", "granite_speech", "phi4_multimodal"]

MODELS: dict[str, str] = {}
for _name in FAMILY_MODULES:
    _module = importlib.import_module(f"slufit.models.families.{_name}")
    FAMILIES[_module.FAMILY.name] = _module.FAMILY
    MODELS.update(_module.MODELS)
