"""Full-size Qwen2-Audio-7B training steps on one GPU, with random weights (no download).

    python benchmarks/gpu_qwen2_audio.py               # on an H100/H200: ~2-4 minutes
    python benchmarks/gpu_qwen2_audio.py --smoke       # scaled-down config on the CPU: checks the script runs

Builds Qwen2AudioConfig() (its defaults have the 7B's layer counts and widths: a 32-layer, 1280-wide
Whisper-large style encoder and a 32-layer, 4096-wide language model, checked below; the MLP width and
vocabulary are set to the 7B checkpoint's, 11008 and 156032, which differ from the defaults) directly on the GPU in
bf16, with a tokenizer built locally (prompts are a little longer or shorter in tokens than with the real
tokenizer; the lengths used are printed). Batches are SLURP-like: ~3 s of audio (the encoder still runs
its full 30 s window, as Qwen2-Audio always does) and ~40 target tokens.

Measured, each as `--steps` optimizer steps after `--warmup` steps, through the slufit adapter
(LALMAdapter.collate + loss, the training loop's path):
  1. LoRA (r=16, language model), encoder and projector frozen, encoder run every step;
  2. the same with the frozen encoder's outputs cached;
  3. full fine-tuning of language model + projector (encoder frozen, cached), bf16 parameters,
     AdamW with bf16 states (8-bit states when bitsandbytes is installed and --optim adamw8bit);
  4. full fine-tuning of the whole model (encoder too), same optimizer; reported as not fitting on OOM.
Printed per run: step time, tokens/s (language-model tokens, audio placeholders included), peak memory,
and model FLOPs utilisation against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from slufit.data.example import Entity, Example
from slufit.models.base import SLUItem
from slufit.models.lalm import adapter as lalm_adapter
from slufit.models.lalm.adapter import LALMAdapter
from slufit.models.lalm.families import family_for
from slufit.models.lalm.testing import feature_extractor, tiny_tokenizer
from slufit.target import format_target

# Dense bf16 peak (no sparsity), TFLOP/s.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
ENTITY_TYPES = ["date", "time", "place_name", "person", "event_name", "device_type"]
WORDS = "wake me up at seven am tomorrow play some jazz in the kitchen remind me to call mona on tuesday".split()


def build_model(smoke: bool, device: str, dtype: torch.dtype, tokenizer):
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

    config = Qwen2AudioConfig()
    a, t = config.audio_config, config.text_config
    print(f"Qwen2AudioConfig defaults: encoder {a.encoder_layers} layers x {a.d_model} (heads {a.encoder_attention_heads}, "
          f"{a.num_mel_bins} mels, {a.max_source_positions} positions); LM {t.num_hidden_layers} layers x "
          f"{t.hidden_size} (ffn {t.intermediate_size}, heads {t.num_attention_heads}/{t.num_key_value_heads} kv, "
          f"vocab {t.vocab_size})")
    assert (a.encoder_layers, a.d_model, a.num_mel_bins, a.max_source_positions) == (32, 1280, 128, 1500)
    assert (a.encoder_layers, a.d_model) == (32, 1280) and (t.num_hidden_layers, t.hidden_size) == (32, 4096)
    # The defaults' text part is Qwen2Config's (MLP 22016, vocab 151936); Qwen2-Audio-7B's config.json has
    # an 11008-wide MLP, a 156032-word vocabulary and rms_norm_eps 1e-5 (8.4 B parameters in all).
    t.intermediate_size, t.vocab_size, t.rms_norm_eps, t.max_position_embeddings = 11008, 156032, 1e-5, 8192
    print(f"  set as Qwen2-Audio-7B's config.json: LM ffn {t.intermediate_size}, vocab {t.vocab_size}")
    if smoke:  # same classes and code path, scaled down
        a.encoder_layers, a.d_model, a.encoder_ffn_dim, a.encoder_attention_heads = 2, 64, 128, 2
        t.num_hidden_layers, t.hidden_size, t.intermediate_size = 2, 64, 128
        t.num_attention_heads, t.num_key_value_heads, t.vocab_size = 4, 2, 1000
    config.audio_token_index = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    t.pad_token_id, t.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    config._attn_implementation = "sdpa"
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):  # initialise on the GPU: 8.4 B parameters would take minutes on the CPU
            model = Qwen2AudioForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(before)
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor(a.num_mel_bins, 30), tokenizer=tokenizer,
                                    chat_template=tokenizer.chat_template)
    return model, processor


# Synthetic audio kept in memory (the GPU machine may lack soundfile): the adapter reads it from here.
WAVES: dict[str, np.ndarray] = {}
lalm_adapter.load_wave = lambda path: WAVES[str(path)]


def slurp_like(n: int, rng: np.random.Generator, folder: Path) -> list[SLUItem]:
    items = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 11))))
        entities = tuple(Entity(str(rng.choice(ENTITY_TYPES)), " ".join(rng.choice(WORDS, size=2))) for _ in range(2))
        ex = Example(id=f"s{i}", locale="en-US", text=text, scenario="calendar", action="set",
                     intent="calendar_set", entities=entities)
        samples = int(16000 * rng.uniform(2.5, 3.5))
        wave = 0.1 * np.sin(np.arange(samples) * rng.uniform(0.02, 0.2)) + 0.02 * rng.standard_normal(samples)
        path = folder / f"s{i}.wav"
        WAVES[str(path)] = wave.astype(np.float32)
        items.append(SLUItem(ex, "speech", audio_path=path))
    return items


def make_optimizer(params, name: str):
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, lr=1e-5), "AdamW 8-bit states (bitsandbytes)"
        except ImportError:
            print("  bitsandbytes not installed: falling back to AdamW with bf16 states")
    return torch.optim.AdamW(params, lr=1e-5, foreach=False), "AdamW, states in the parameters' dtype"


def count(model, adapter, part: str) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if adapter.part_of(n) == part and "lora_" not in n)


def measure(name: str, adapter: LALMAdapter, items: list[SLUItem], args, device: str, optim: str,
            encoder_trained: bool, llm_full: bool) -> None:
    model = adapter.module.hf
    params = [p for p in adapter.module.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    batches = [items[i:i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    cuda = device == "cuda"
    optimizer = None
    try:
        optimizer, optim_name = make_optimizer(params, optim)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        times, tokens = [], 0
        for step in range(args.warmup + args.steps):
            batch = adapter.collate(batches[step % len(batches)])
            batch = {k: v.to(device) for k, v in batch.items()}
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            loss = adapter.loss(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
                tokens += int(batch["attention_mask"].sum())
    except torch.OutOfMemoryError:
        print(f"{name}: does not fit ({trainable / 1e6:,.0f} M trainable parameters): CUDA out of memory")
        return
    finally:
        del optimizer
        adapter.module.zero_grad(set_to_none=True)
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    step_s = float(np.mean(times))
    tokens_s = tokens / sum(times)
    # Model FLOPs: LM 2N per token forward, 2N backward to activations, +2N for weight gradients when
    # its weights are trained; the encoder runs its full 30 s window (1500 positions) per recording.
    n_llm, n_enc = count(model, adapter, "language_model"), count(model, adapter, "audio_encoder")
    llm_flops = (6 if llm_full else 4) * n_llm * tokens
    cached = adapter.module.cache is not None
    enc_positions = args.steps * args.batch_size * model.config.audio_config.max_source_positions
    enc_flops = 0 if cached else (6 if encoder_trained else 2) * n_enc * enc_positions
    achieved = (llm_flops + enc_flops) / sum(times) / 1e12
    peak_mem = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    gpu = torch.cuda.get_device_name() if cuda else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
    mfu = f"{100 * achieved / peak:.1f} %" if peak else "n/a"
    print(f"{name}: {trainable / 1e6:,.1f} M trainable, {optim_name}; step {step_s * 1000:.0f} ms, "
          f"{tokens_s:,.0f} tokens/s, {args.batch_size / step_s:.1f} samples/s, peak memory {peak_mem:.1f} GiB, "
          f"{achieved:.0f} TFLOP/s model FLOPs, MFU {mfu}, last loss {loss.item():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="scaled-down config on the CPU (checks the script)")
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
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        items = slurp_like(4 * args.batch_size, rng, Path(tmp))
        tokenizer = tiny_tokenizer([i.example.text for i in items] + [format_target(i.example) for i in items])
        start = time.perf_counter()
        model, processor = build_model(args.smoke, device, dtype, tokenizer)
        total = sum(p.numel() for p in model.parameters())
        print(f"built {total / 1e9:.2f} B parameters in {dtype} on {device} in {time.perf_counter() - start:.0f} s")
        sample = LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, use_encoder_cache=False).collate(items[:args.batch_size])
        n_target = (sample["labels"] != -100).sum(1).float().mean().item()
        print(f"batch {args.batch_size}: {sample['input_ids'].shape[1]} tokens per row (padded), "
              f"{n_target:.0f} target tokens per row on average, audio window 30 s")

        lora = LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, lora={"r": 16, "alpha": 32, "dropout": 0.0},
                           use_encoder_cache=False)
        lora.set_trainable(audio_encoder=False, projector=False, language_model=True)
        measure("1. LoRA r=16, encoder run every step", lora, items, args, device, "adamw", False, False)
        lora.use_encoder_cache = True
        lora.set_trainable(audio_encoder=False, projector=False, language_model=True)
        measure("2. LoRA r=16, cached encoder", lora, items, args, device, "adamw", False, False)
        model = lora.module.net.unload()  # back to the plain model, LoRA layers removed
        del lora
        gc.collect()

        full = LALMAdapter(model, tokenizer, family=family_for(model), processor=processor)
        full.set_trainable(audio_encoder=False, projector=True, language_model=True)
        measure("3. full FT of LM + projector, cached encoder", full, items, args, device, args.optim, False, True)
        if not args.skip_full_model:
            full.set_trainable(audio_encoder=True, projector=True, language_model=True)
            measure("4. full FT of the whole model", full, items, args, device, args.optim, True, True)


if __name__ == "__main__":
    main()
