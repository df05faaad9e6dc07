"""`slufit models`: the registered model names, their hub ids, sizes, audio windows and supported options.

    slufit models           # a table
    slufit models --json    # the same, one JSON object per name

Nothing is downloaded or loaded: the facts come from the registry and the family modules.
"""

from __future__ import annotations

import argparse
import json

# The embedded default is not a transformers LALM class: the CTC-bridge model (slufit.models.bridge).
_BRIDGE = {"name": "tiny", "family": "ctc-bridge", "class": "Qwen2ForCausalLM over a CTC bridge",
           "size": "1.4M LM (demo: 0.9M) + 1.36M CTC head + 8.2M frozen ears", "window_s": 5.0,
           "encoder_cache": True, "builtin_adapter": "-",
           "options": ["simulate_text", "simulate_scale", "simulate_context", "simulate_words",
                       "speech_readings", "lm_sizes", "encoder_cache_dir", "device", "dtype"]}
# Composed from parts (slufit.models.composed): frozen ears + tiny's CTC head + any causal LM.
_COMPOSED = {"name": "composed", "family": "composed", "class": "any AutoModelForCausalLM over the CTC bridge",
             "size": "option llm: SmolLM2-135M-Instruct (default, offline GGUF), a folder or hub id; + 1.36M CTC head + frozen ears",
             "window_s": 5.0, "encoder_cache": True, "builtin_adapter": "-",
             "options": ["llm", "bridge", "connector", "lora", "freeze_embeddings", "system", "copy_fillers",
                         "copy_cutoff", "lexicon", "lexicon_cutoff", "simulate_text", "simulate_scale", "simulate_words",
                         "speech_readings", "gradient_checkpointing", "encoder_cache_dir", "device", "dtype"]}
_COMMON_OPTIONS = ["lora", "dtype", "device", "gradient_checkpointing", "transcript_first", "attn_implementation"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def describe() -> list[dict]:
    """One row per registered name: name, hub (id or builder), family, class, size, window_s, cache, options."""
    from slufit.models.lalm import families
    from slufit.models.registry import MODELS

    rows = []
    for name, hub in MODELS.items():
        if name == _BRIDGE["name"]:
            rows.append({**_BRIDGE, "hub": hub})
            continue
        if name == _COMPOSED["name"]:
            rows.append({**_COMPOSED, "hub": hub})
            continue
        module = families.module_of(name)
        family = module.FAMILY if module is not None else None
        options = list(_COMMON_OPTIONS)
        if family is not None and family.cacheable:
            options += ["use_encoder_cache", "encoder_cache_dir"]
        rows.append({"name": name, "hub": hub, "family": family.name if family else "-",
                     "class": family.model_class if family else "-",
                     "size": module.SIZES.get(name, "-") if module else "-",
                     "window_s": (getattr(module, "MAX_SECONDS", None) or _window_of(module)) if module else None,
                     "encoder_cache": bool(family and family.cacheable),
                     "builtin_adapter": _builtin_adapter(family),
                     "options": options if family else ["see docs/models.md"]})
    return rows


def _builtin_adapter(family) -> str:
    """The checkpoint's own audio adapter, which slufit loads and keeps on for speech batches only."""
    if family is None or family.audio_adapter is None:
        return "-"
    subfolder = family.audio_adapter[1]
    return f"{subfolder or 'audio LoRA'} (loaded; on for speech only)"


def _window_of(module) -> float | None:
    """The audio window of a family that reads one fixed window per recording (its real checkpoints: 30 s)."""
    return 30.0 if module.FAMILY.window is None else None


def run(args: argparse.Namespace) -> int:
    rows = describe()
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    header = ("name", "hub id", "family", "size (nominal)", "audio window", "encoder cache", "built-in adapter")
    table = [header] + [(r["name"], r["hub"], r["family"], r["size"],
                         "-" if r["window_s"] is None else f"{r['window_s']:g} s", "yes" if r["encoder_cache"] else "no",
                         r.get("builtin_adapter", "-"))
                        for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f"\noptions (model.options in a run config): {', '.join(_COMMON_OPTIONS)}; "
          "use_encoder_cache and encoder_cache_dir where the encoder cache is 'yes'. See docs/models.md.")
    return 0
