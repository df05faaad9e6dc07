"""Full-size Voxtral-Mini-3B and Audio Flamingo 3 training steps on one GPU, with random weights (no download).

    python benchmarks/gpu_families.py                          # both, on an H100/H200
    python benchmarks/gpu_families.py --family voxtral         # one
    python benchmarks/gpu_families.py --smoke                  # scaled-down configs on the CPU: checks the script

The sibling of gpu_qwen2_audio.py (same SLURP-like batches, same four runs, same step timing, tokens/s, peak
memory and MFU accounting, imported from it), for two of the newer families (slufit.models.lalm):
- voxtral: VoxtralConfig()'s defaults are Voxtral-Mini-3B-2507's shapes (Whisper-large-v3 encoder, 32 x 1280;
  Llama decoder 30 x 3072, 8 kv heads, head_dim 128, vocabulary 131072), checked below; every clip costs
  375 audio tokens (one 30 s window);
- audio-flamingo-3: AudioFlamingo3Config()'s encoder defaults are Whisper-large-v3's; the decoder is set to
  Qwen2.5-7B's shapes (28 x 3584, MLP 18944, 28/4 heads, vocabulary 152064), which the defaults are not.
Tokenizers are built locally with each family's special tokens (prompts differ a little in length from the
real tokenizers'; the lengths used are printed).

Not run yet: the session that wrote this had no GPU (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_qwen2_audio as base  # noqa: E402  (also routes the adapter's audio reading to in-memory waves)

from slufit.models.lalm.adapter import LALMAdapter  # noqa: E402
from slufit.models.lalm.families import family_for  # noqa: E402
from slufit.target import format_target  # noqa: E402


def build(family: str, smoke: bool, device: str, dtype: torch.dtype, texts: list[str]):
    """(model, tokenizer, processor, feature extractor) at full size (or scaled down with smoke)."""
    from slufit.models.lalm import audio_flamingo3, voxtral
    from slufit.models.lalm.common import family_tokenizer
    from slufit.models.lalm.testing import feature_extractor

    module = voxtral if family == "voxtral" else audio_flamingo3
    end = "</s>" if family == "voxtral" else "<|im_end|>"
    pad = "<pad>" if family == "voxtral" else "<|endoftext|>"
    tokenizer = family_tokenizer(texts, module.SPECIAL_TOKENS, end, pad, module.CHAT_TEMPLATE)
    if family == "voxtral":
        from transformers import VoxtralConfig, VoxtralForConditionalGeneration as cls

        config = VoxtralConfig(audio_config={"model_type": "voxtral_encoder"}, text_config={})
        a, t = config.audio_config, config.text_config
        assert (a.num_hidden_layers, a.hidden_size, a.max_source_positions) == (32, 1280, 1500)
        assert (t.num_hidden_layers, t.hidden_size, t.num_key_value_heads, t.vocab_size) == (30, 3072, 8, 131072)
    else:
        from transformers import AudioFlamingo3Config, AudioFlamingo3ForConditionalGeneration as cls

        config = AudioFlamingo3Config()
        a, t = config.audio_config, config.text_config
        assert (a.num_hidden_layers, a.hidden_size, a.max_source_positions) == (32, 1280, 1500)
        t.num_hidden_layers, t.hidden_size, t.intermediate_size = 28, 3584, 18944
        t.num_attention_heads, t.num_key_value_heads, t.vocab_size = 28, 4, 152064
    if smoke:  # the same classes and code path, scaled down
        a.num_hidden_layers, a.hidden_size, a.intermediate_size, a.num_attention_heads = 2, 64, 256, 2
        t.num_hidden_layers, t.hidden_size, t.intermediate_size = 2, 64, 128
        t.num_attention_heads, t.num_key_value_heads, t.vocab_size = 4, 2, 2000
        if hasattr(t, "head_dim"):
            t.head_dim = 16
    print(f"{family}: encoder {a.num_hidden_layers} x {a.hidden_size}; LM {t.num_hidden_layers} x {t.hidden_size} "
          f"(ffn {t.intermediate_size}, heads {t.num_attention_heads}/{t.num_key_value_heads} kv, vocab {t.vocab_size})")
    config.audio_token_id = tokenizer.convert_tokens_to_ids(module.AUDIO_TOKEN)
    t.pad_token_id, t.eos_token_id = tokenizer.pad_token_id, tokenizer.convert_tokens_to_ids(end)
    config._attn_implementation = "sdpa"
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):  # initialise on the GPU: billions of parameters take minutes on the CPU
            model = cls(config)
    finally:
        torch.set_default_dtype(before)
    fe = feature_extractor(128, 30)
    return model, tokenizer, module._processor(fe, tokenizer), fe


def run_family(family: str, args, device: str, dtype: torch.dtype, items) -> None:
    texts = [i.example.text for i in items] + [format_target(i.example) for i in items]
    start = time.perf_counter()
    model, tokenizer, processor, fe = build(family, args.smoke, device, dtype, texts)
    print(f"built {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters in {dtype} on {device} "
          f"in {time.perf_counter() - start:.0f} s")
    kwargs = dict(processor=processor, feature_extractor=fe)
    sample = LALMAdapter(model, tokenizer, family=family_for(model), use_encoder_cache=False, **kwargs).collate(items[:args.batch_size])
    n_target = (sample["labels"] != -100).sum(1).float().mean().item()
    print(f"batch {args.batch_size}: {sample['input_ids'].shape[1]} tokens per row (padded), "
          f"{n_target:.0f} target tokens per row on average, audio window 30 s")
    lora = LALMAdapter(model, tokenizer, family=family_for(model), lora={"r": 16, "alpha": 32, "dropout": 0.0}, use_encoder_cache=False,
                       **kwargs)
    lora.set_trainable(audio_encoder=False, projector=False, language_model=True)
    base.measure(f"{family} 1. LoRA r=16, encoder run every step", lora, items, args, device, "adamw", False, False)
    lora.use_encoder_cache = True
    lora.set_trainable(audio_encoder=False, projector=False, language_model=True)
    base.measure(f"{family} 2. LoRA r=16, cached encoder", lora, items, args, device, "adamw", False, False)
    model = lora.module.net.unload()
    del lora
    gc.collect()
    full = LALMAdapter(model, tokenizer, family=family_for(model), **kwargs)
    full.set_trainable(audio_encoder=False, projector=True, language_model=True)
    base.measure(f"{family} 3. full FT of LM + projector, cached encoder", full, items, args, device, args.optim,
                 False, True)
    if not args.skip_full_model:
        full.set_trainable(audio_encoder=True, projector=True, language_model=True)
        base.measure(f"{family} 4. full FT of the whole model", full, items, args, device, args.optim, True, True)
    del full, model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["voxtral", "audio-flamingo-3"], action="append",
                        help="one family (repeatable); default both")
    parser.add_argument("--smoke", action="store_true", help="scaled-down configs on the CPU (checks the script)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--optim", choices=["adamw", "adamw8bit"], default="adamw")
    parser.add_argument("--skip-full-model", action="store_true", help="skip run 4 (whole-model full fine-tuning)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.batch_size = 1, 1, 2
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; use --smoke to check the script on the CPU")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"device {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}")
    with tempfile.TemporaryDirectory() as tmp:
        items = base.slurp_like(4 * args.batch_size, np.random.default_rng(0), Path(tmp))
        for family in args.family or ["voxtral", "audio-flamingo-3"]:
            run_family(family, args, device, dtype, items)


if __name__ == "__main__":
    main()
