"""`slufit pretrain`: train the tiny default's CTC bridge on unlabelled speech.

The bridge spends none of the labelled speech budget: it hears the corpus's pretraining
pool (templates and fillers disjoint from the SLU dev/test sets) and random 2-7-word
sequences of each locale's most frequent words (PyPI `wordfreq`, data CC BY-SA 4.0),
all voiced by espeak-ng's *unlabelled* speaker pool (the training speakers' voices and 67 more, never a
test speaker's; `speakers: train` for the 12 training speakers only):

    setup     pool + word sequences -> speech (cached by slufit.speech) -> frozen ears, run once per clip
    fit       CTC on the head (AdamW, cosine, time masking), ears frozen
    measure   CER / WER on SLU dev utterances by *test* speakers (no template or filler shared with
              the pool); the head's confusions (substitution / deletion / insertion rates and the mean
              posterior row of each unit) on held-out unlabelled clips it never trained on, which
              simulated bridge vectors for text items are drawn from (slufit.models.bridge.simulate)

The result is cached under `<cache_dir>/bridge/<hash>/` (hash of the config, the data and the
code); a second call with the same inputs returns at once. It holds `bridge.safetensors` (head),
`confusions.safetensors`, `bridge.json` (everything `slufit.models.bridge.model` needs to build
the tiny model on top), `metrics.json`, `predictions.jsonl` and, written last, `summary.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
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
from slufit.models.bridge import ctc, readings
from slufit.models.bridge.units import ALPHABETS, alphabet, normalize
from slufit.resources import configs_root, resolve_config

BRIDGE_POOLS = ("unlabelled", "train", "unlabelled+festival")  # BridgeConfig.speakers (slufit.speech.speakers)

DEFAULT_CONFIG = configs_root() / "tiny" / "pretrain.yaml"  # packaged (slufit.resources)
WORDFREQ_LANG = {"en-US": "en", "fr-FR": "fr", "de-DE": "de", "es-ES": "es"}


@dataclass
class BridgeConfig:
    """Everything that determines a trained bridge (all but `threads` and `cache_dir` enter its hash)."""

    # Locales whose unlabelled speech trains the CTC head (its units are their letters).
    locales: list[str] = field(default_factory=lambda: ["en-US"])
    # Locales whose letters the language model reads as text (a superset of `locales`).
    model_locales: list[str] = field(default_factory=lambda: ["en-US", "fr-FR", "de-DE", "es-ES"])
    # Folder with <locale>/{dev,pretrain}.jsonl; null: build the embedded corpus in the cache.
    corpus: str | None = None
    # Utterances from the start of each locale's pretraining pool.
    pool_utterances: int = 2000
    # Random 2-7-word sequences of the locale's `top_words` most frequent words (wordfreq) per locale.
    word_sequences: int = 4000
    top_words: int = 10000
    # Unlabelled clips per locale held out of training (a third pool, the rest word sequences): the confusions.
    heldout: int = 300
    # Lexicon sweep, held out of training like `heldout`: each of the locale's `lexicon_words` most frequent
    # words (wordfreq) voiced `lexicon_readings` times in random 2-7-word sequences. The head's segments for
    # each word there (and in the held-out clips) are its readings (slufit.models.bridge.readings), which
    # the `simulate_words` model option puts into simulated text items. 0: no sweep, no readings.
    # Measured on the demo (docs/tiny.md): 10,000 words once each, 2,208 clips, ~26 s more pretraining.
    lexicon_words: int = 10000
    lexicon_readings: int = 1
    # Speaker pool that voices the unlabelled clips (training and held-out): "unlabelled" (the 12 training
    # speakers' variants plus 67 more espeak-ng variants, 75 speakers; never a test variant:
    # slufit.speech.speakers) or "train" (the 12 training speakers, as before session 4). Measured on the demo:
    # more voices, lower CER on test speakers, and held-out confusions closer to theirs (docs/tiny.md).
    # "unlabelled+festival" adds a second engine, Festival's 3 English voices x 5 paces (apt; en-US only).
    speakers: str = "unlabelled"
    # SLU dev utterances per locale, voiced by test speakers, for CER / WER.
    eval_utterances: int = 200
    # Whisper encoder: null = tiny.en (English only, pinned), "whisper-base" (multilingual, pinned), a
    # CTranslate2 Whisper folder, or a transformers Whisper id.
    ears: str | None = None
    window_s: int = 5
    # CTC head sizes (slufit.models.bridge.ctc.HeadSizes fields).
    head: dict = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 32
    # Augmentation of the CTC's training speech, as speech toolkits do it (0 / 0: none, as before session 6).
    # `augment_copies` perturbed copies of every training clip: speed perturbation (Kaldi-style: resampled, so
    # tempo and pitch move together) by a factor drawn from `speed_range`, and white noise at an SNR drawn
    # from `noise_snr` dB; each copy costs one more pass of the ears. `channel_mask`: SpecAugment-style masking
    # of up to that many encoder channels (two spans) in every training batch, besides the time masking.
    augment_copies: int = 0
    speed_range: list = field(default_factory=lambda: [0.9, 1.1])
    noise_snr: list = field(default_factory=lambda: [10.0, 30.0])
    channel_mask: int = 0
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0
    # Not part of the hash: torch CPU threads (null: keep the process's) and the cache folder (nor the
    # corpus folder's name: its texts are hashed).
    threads: int | None = None
    cache_dir: str = ".slufit-cache"

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay"):  # YAML reads 2e-3 (no dot) as a string
            try:
                setattr(self, name, float(getattr(self, name)))
            except (TypeError, ValueError):
                raise SlufitError(f"pretrain: {name} must be a number, got {getattr(self, name)!r}") from None
        unknown = [loc for loc in [*self.locales, *self.model_locales] if loc not in ALPHABETS]
        if unknown or not self.locales:
            raise SlufitError(f"pretrain: locales must be among {', '.join(ALPHABETS)}; got {unknown or 'none'}")
        self.model_locales = list(dict.fromkeys([*self.model_locales, *self.locales]))
        for name in ("pool_utterances", "eval_utterances", "epochs", "batch_size", "top_words"):
            if getattr(self, name) < 1:
                raise SlufitError(f"pretrain: {name} must be >= 1, got {getattr(self, name)}")
        if self.speakers not in BRIDGE_POOLS:
            raise SlufitError(f"pretrain: speakers must be one of {', '.join(BRIDGE_POOLS)}, got {self.speakers!r}")
        if self.word_sequences < 0 or self.heldout < 2:
            raise SlufitError("pretrain: word_sequences must be >= 0 and heldout >= 2")
        if self.lexicon_words < 0 or self.lexicon_readings < 1:
            raise SlufitError("pretrain: lexicon_words must be >= 0 and lexicon_readings >= 1")
        if self.augment_copies < 0 or self.channel_mask < 0:
            raise SlufitError("pretrain: augment_copies and channel_mask must be >= 0")
        for name, low_bound in (("speed_range", 0.5), ("noise_snr", -10.0)):
            pair = getattr(self, name)
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(v, (int, float)) for v in pair)
                    or not low_bound <= pair[0] <= pair[1]):
                raise SlufitError(f"pretrain: {name} must be [low, high] with {low_bound:g} <= low <= high, got {pair!r}")
            setattr(self, name, [float(v) for v in pair])
        try:
            self.head = asdict(ctc.HeadSizes(**self.head))
        except TypeError as err:
            raise SlufitError(f"pretrain: head: {err}") from None

    def hashed(self) -> dict:
        out = asdict(self)
        del out["threads"], out["cache_dir"], out["corpus"]  # the corpus enters the hash by its texts
        return out


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> BridgeConfig:
    """A YAML file plus `key=value` overrides (values parsed as YAML; `head.d=128` changes one head size)."""
    from slufit.train.config import apply_override

    data = read_yaml_mapping(path) if path is not None else {}
    for override in overrides:
        key, sep, _ = override.partition("=")
        if not sep:
            raise SlufitError(f"override {override!r}: expected key=value, e.g. epochs=8")
        if "." in key and key.partition(".")[0] != "head":
            raise SlufitError(f"override {override!r}: only head.* takes a dotted key")
        apply_override(data, override)  # missing head sizes are filled by BridgeConfig (HeadSizes defaults)
    known = {f.name for f in fields(BridgeConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SlufitError(f"{path or 'config'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return BridgeConfig(**data)


# ---------------------------------------------------------------- data


def frequent_words(locale: str, top: int) -> list[str]:
    """The locale's `top` most frequent words (wordfreq) that are letters of its alphabet only."""
    try:
        from wordfreq import top_n_list
    except ImportError:
        raise SlufitError("the bridge's word pool needs wordfreq: pip install wordfreq (or 'slufit[tiny]')") from None
    letters = ALPHABETS[locale]
    return [w for w in top_n_list(WORDFREQ_LANG[locale], top) if normalize(w, letters) == w and "'" not in w[:1]]


def word_sequences(locale: str, n: int, top: int, seed: int) -> list[str]:
    """`n` distinct random sequences of 2-7 of the locale's `top` most frequent words (letters only)."""
    if n == 0:
        return []
    words = frequent_words(locale, top)
    rng = random.Random(f"{seed}/{locale}/words")
    out, seen = [], set()
    while len(out) < n:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 7)))
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def unlabelled(locale: str, texts: list[str], prefix: str) -> list[Example]:
    """Examples that carry only text to voice: their label fields are placeholders, never trained on."""
    return [Example(id=f"{prefix}-{locale}-{i:05d}", locale=locale, text=t, scenario="unlabelled", action="speech",
                    intent="unlabelled_speech", source=prefix) for i, t in enumerate(texts)]


def _corpus(config: BridgeConfig) -> Path:
    corpus = Path(config.corpus) if config.corpus else Path(config.cache_dir) / "corpus" / f"embedded-seed{config.seed}"
    missing = [loc for loc in config.locales if not (corpus / loc / "pretrain.jsonl").is_file()]
    if missing and config.corpus:
        raise SlufitError(f"{corpus}: no pretrain.jsonl for {', '.join(missing)} (build it with `slufit corpus build`)")
    if missing:
        from slufit.corpus import build_corpus

        build_corpus(corpus, locales=config.locales, seed=config.seed)
    return corpus


def pools(config: BridgeConfig) -> dict[str, dict[str, list[Example]]]:
    """Per locale: `train`, `heldout` and `lexicon` unlabelled examples, and `eval` (SLU dev) examples."""
    corpus = _corpus(config)
    out = {}
    for locale in config.locales:
        pool = read_examples(corpus / locale / "pretrain.jsonl")
        half = config.heldout // 3  # a third from the pool, the rest word sequences
        if len(pool) < config.pool_utterances + half:
            raise SlufitError(f"{corpus / locale / 'pretrain.jsonl'}: {len(pool)} utterances, "
                              f"{config.pool_utterances + half} needed (pool_utterances + heldout / 3)")
        words = unlabelled(locale, word_sequences(locale, config.word_sequences + config.heldout - half,
                                                  config.top_words, config.seed), "wordfreq")
        dev_file = corpus / locale / "dev.jsonl"
        dev = read_examples(dev_file) if dev_file.is_file() else []
        if not dev:
            raise SlufitError(f"{dev_file}: no SLU dev utterances to measure the bridge on (build the corpus with --dev)")
        sweep = (readings.lexicon_sweep(frequent_words(locale, config.lexicon_words), config.lexicon_readings,
                                        config.seed) if config.lexicon_words else [])
        out[locale] = {
            "train": pool[: config.pool_utterances] + words[: config.word_sequences],
            "heldout": pool[len(pool) - half:] + words[config.word_sequences:],
            "lexicon": unlabelled(locale, sweep, "lexicon"),
            "eval": dev[: config.eval_utterances],
        }
    return out


def _code_version() -> str:
    root = Path(slufit.__file__).parent
    digest = hashlib.sha256(slufit.__version__.encode())
    sources = [root / "models" / "bridge" / n for n in ("pretrain.py", "ctc.py", "units.py")]
    sources += [root / "models" / "ears" / n for n in ("encoder.py", "whisper_ct2.py")]
    sources += sorted((root / "speech").glob("*.py"))
    for path in sources:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def run_key(config: BridgeConfig, data: dict) -> str:
    digest = hashlib.sha256(json.dumps(config.hashed(), sort_keys=True).encode())
    for locale in sorted(data):
        for part in ("train", "heldout", "lexicon", "eval"):  # an empty part leaves the digest as it was
            digest.update("\n".join(e.text for e in data[locale][part]).encode())
    digest.update(_code_version().encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- setup, fit, measure


def _voice(examples: list[Example], out_dir: Path, speakers: str) -> list[Path]:
    from slufit.speech import synthesize_examples

    spoken = synthesize_examples(examples, out_dir, speakers=speakers, progress=True)
    return [out_dir / e.recordings[0].path for e in spoken]


def encode_all(ears, paths: list[Path], batch_size: int = 16, desc: str = "ears") -> list[torch.Tensor]:
    """Frozen encoder frames for each recording, computed once; batches of similar length (little padding)."""
    from slufit.data.audio import load_audio

    return encode_waves(ears, [load_audio(p) for p in paths], batch_size, desc)


def perturbed(wave, seed: int, speed_range: list[float], noise_snr: list[float]):
    """A speed-perturbed, noisy copy of 16 kHz `wave` (reproducible from `seed`)."""
    import numpy as np
    import soxr

    from slufit.speech.synth import add_noise

    rng = np.random.default_rng(seed)
    speed = float(rng.uniform(*speed_range))
    # Played `speed` times faster: read as if sampled at 16 kHz x speed, brought back to 16 kHz.
    wave = soxr.resample(wave, 16000 * speed, 16000).astype(np.float32) if speed != 1.0 else wave
    return add_noise(wave, float(rng.uniform(*noise_snr)), seed)


def encode_waves(ears, waves: list, batch_size: int = 16, desc: str = "ears") -> list[torch.Tensor]:
    """`encode_all` for waveforms in memory."""
    from tqdm import tqdm

    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    out: list[torch.Tensor | None] = [None] * len(waves)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
        chunk = order[start: start + batch_size]
        for i, frames in zip(chunk, ears.encode([waves[i] for i in chunk])):
            out[i] = frames
    return out


def fit(head: ctc.CTCHead, frames: list[torch.Tensor], targets: list[list[int]], config: BridgeConfig,
        log=print) -> list[dict]:
    """CTC training of the head: AdamW, linear warm-up then cosine, time masking, length-bucketed batches."""
    generator = torch.Generator().manual_seed(config.seed)
    rng = random.Random(config.seed)
    keep = [i for i, t in enumerate(targets) if t and len(t) + 2 <= head.sizes.upsample * frames[i].shape[0]]
    if len(keep) < len(targets):
        log(f"  {len(targets) - len(keep)} clips skipped: transcript too long for the clip's frames (or empty)")
    per_epoch = math.ceil(len(keep) / config.batch_size)
    steps = per_epoch * config.epochs
    warmup = max(1, steps // 20)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warmup if s < warmup else
                                                  0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))))
    history, started = [], time.time()
    head.train()
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="CTC bridge", unit="step", leave=False)
    for epoch in range(config.epochs):
        order = rng.sample(keep, len(keep))
        window = config.batch_size * 16  # sort by length inside windows of 16 batches
        batches = []
        for s in range(0, len(order), window):
            bucket = sorted(order[s: s + window], key=lambda i: frames[i].shape[0])
            batches += [bucket[j: j + config.batch_size] for j in range(0, len(bucket), config.batch_size)]
        rng.shuffle(batches)
        total = 0.0
        for batch in batches:
            x, lengths = ctc.pad_frames([frames[i] for i in batch])
            x = ctc.time_mask(x, lengths, generator)
            if config.channel_mask:
                x = ctc.channel_mask(x, generator, width=config.channel_mask)
            logp, out_lengths = head(x, lengths)
            flat = torch.tensor([u + 1 for i in batch for u in targets[i]])
            target_lengths = torch.tensor([len(targets[i]) for i in batch])
            loss = torch.nn.functional.ctc_loss(logp.transpose(0, 1), flat, out_lengths, target_lengths,
                                                blank=ctc.BLANK, zero_infinity=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
            bar.update(1)
        record = {"epoch": epoch + 1, "loss": round(total / len(batches), 4), "seconds": round(time.time() - started, 1)}
        history.append(record)
        log(f"  epoch {record['epoch']}/{config.epochs}: CTC loss {record['loss']:.4f} ({record['seconds']} s)")
    bar.close()
    head.eval()
    return history


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    import jiwer

    hyps = [h or "<empty>" for h in hypotheses]
    return {"cer": round(jiwer.cer(references, hyps), 4), "wer": round(jiwer.wer(references, hyps), 4)}


# Pseudo-counts of a unit's own confusion row in each of its context rows (see `confusions`).
CONTEXT_PRIOR = 4.0


def confusions(posts: list[torch.Tensor], references: list[list[int]], n_units: int) -> dict[str, torch.Tensor]:
    """What the head gets wrong on clips it never trained on, per reference unit.

    - `emit` [units, units + 1]: P(output unit v | reference unit u), the last column a deletion;
    - `emit_context` [units + 1, units, units + 1, units + 1]: the same given the reference's left and right
      neighbours (index `units`: the text's edge), smoothed towards `emit` with CONTEXT_PRIOR pseudo-counts
      (a context seen twice is mostly its unit's own row, one seen 50 times mostly its own counts);
    - `insert` [units + 1]: P(an extra unit after a reference unit), then which unit (first `units` entries
      a distribution, last entry the rate);
    - `rows` [units, units]: the mean segment distribution of segments whose argmax is unit v (how the
      head "sounds" when it emits v), one-hot for units it never emitted.
    """
    from rapidfuzz.distance import Levenshtein

    emit = torch.zeros(n_units, n_units + 1)
    in_context = torch.zeros(n_units + 1, n_units, n_units + 1, n_units + 1)
    inserted = torch.zeros(n_units)
    rows = torch.zeros(n_units, n_units)
    counts = torch.zeros(n_units)
    for post, ref in zip(posts, references):
        seg = ctc.segments(post)
        if seg.shape[0]:
            best = seg.argmax(-1)
            rows.index_add_(0, best, seg)
            counts += torch.bincount(best, minlength=n_units).float()
        hyp = [int(u) for u in seg.argmax(-1)] if seg.shape[0] else []
        # Align on unit strings (chr offsets keep Levenshtein's characters one per unit).
        a, b = "".join(chr(0x100 + u) for u in ref), "".join(chr(0x100 + u) for u in hyp)
        output = list(ref)  # per reference position: the unit emitted for it, n_units for a deletion
        for op in Levenshtein.editops(a, b):
            if op.tag == "replace":
                output[op.src_pos] = hyp[op.dest_pos]
            elif op.tag == "delete":
                output[op.src_pos] = n_units
            else:
                inserted[hyp[op.dest_pos]] += 1
        padded = [n_units, *ref, n_units]
        for pos, (u, v) in enumerate(zip(ref, output)):
            emit[u, v] += 1
            in_context[padded[pos], u, padded[pos + 2], v] += 1
    total_ref = emit.sum()
    seen = emit.sum(-1, keepdim=True)
    emit = torch.where(seen > 0, emit / seen.clamp_min(1), torch.eye(n_units, n_units + 1))
    prior = CONTEXT_PRIOR * emit[None, :, None, :]
    emit_context = (in_context + prior) / (in_context.sum(-1, keepdim=True) + CONTEXT_PRIOR)
    rate = inserted.sum() / total_ref.clamp_min(1)
    insert = torch.cat([inserted / inserted.sum().clamp_min(1), rate.view(1)])
    rows = torch.where(counts[:, None] > 0, rows / counts.clamp_min(1)[:, None], torch.eye(n_units))
    return {"emit": emit, "emit_context": emit_context, "insert": insert, "rows": rows}


def pretrain(config: BridgeConfig, log=print) -> Path:
    """Train (or find in the cache) the bridge for `config`; returns its folder (see the module docstring)."""
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _pretrain(config, log)
    finally:
        torch.set_num_threads(threads_before)


def _pretrain(config: BridgeConfig, log) -> Path:
    from safetensors.torch import save_file

    from slufit.models.bridge.units import Vocabulary
    from slufit.models.ears import Ears

    data = pools(config)
    out = Path(config.cache_dir) / "bridge" / run_key(config, data)
    summary = out / "summary.json"
    if summary.is_file() and read_json(summary).get("done"):
        log(f"pretrain: cached bridge {out}")
        _log_rates(read_json(summary)["rates"], log)
        return out
    log(f"pretrain: CTC bridge into {out}, {torch.get_num_threads()} torch thread(s)\n"
        + yaml.safe_dump(asdict(config), sort_keys=False).rstrip())
    with atomic_open(out / "config.yaml") as handle:
        yaml.safe_dump(asdict(config), handle, sort_keys=False)
    seconds: dict[str, float] = {}
    letters = alphabet(config.locales)
    units = letters + " "

    clock = time.time()
    speech_dir = Path(config.cache_dir) / "speech"
    paths = {loc: {part: _voice(d[part], speech_dir, "test" if part == "eval" else config.speakers) for part in d}
             for loc, d in data.items()}
    seconds["synthesis"] = round(time.time() - clock, 1)
    log("pretrain: voiced " + "; ".join(f"{loc} {len(p['train'])} training, {len(p['heldout'])} held-out, "
                                         f"{len(p['lexicon'])} lexicon sweep ({config.speakers} speakers), "
                                         f"{len(p['eval'])} SLU dev (test speakers)"
                                         for loc, p in paths.items()) + f", {seconds['synthesis']} s")

    clock = time.time()
    ears = Ears.load(config.ears, config.window_s)
    frames = {loc: {part: encode_all(ears, p[part], desc=f"ears {loc} {part}") for part in p} for loc, p in paths.items()}
    seconds["ears"] = round(time.time() - clock, 1)
    log(f"pretrain: ears {ears.source} (d {ears.d_model}), frames cached, {seconds['ears']} s")

    def unit_targets(examples: list[Example]) -> list[list[int]]:
        return [[units.index(c) for c in normalize(e.text, letters)] for e in examples]

    torch.manual_seed(config.seed)
    head = ctc.CTCHead(ears.d_model, len(units), ctc.HeadSizes(**config.head))
    log(f"pretrain: CTC head {sum(p.numel() for p in head.parameters()) / 1e6:.2f} M parameters, "
        f"{len(units)} units ({units!r})")
    clock = time.time()
    train_frames = [f for loc in frames for f in frames[loc]["train"]]
    train_targets = [t for loc in data for t in unit_targets(data[loc]["train"])]
    if config.augment_copies:
        clock_aug = time.time()
        from slufit.data.audio import load_audio

        train_paths = [p for loc in paths for p in paths[loc]["train"]]
        for copy in range(config.augment_copies):
            waves = [perturbed(load_audio(p), config.seed * 1_000_003 + copy * 100_003 + i, config.speed_range,
                               config.noise_snr) for i, p in enumerate(train_paths)]
            train_frames += encode_waves(ears, waves, desc=f"ears, augmented copy {copy + 1}")
        train_targets = train_targets * (1 + config.augment_copies)
        seconds["augment"] = round(time.time() - clock_aug, 1)
        log(f"pretrain: {config.augment_copies} augmented cop{'y' if config.augment_copies == 1 else 'ies'} of "
            f"{len(train_paths)} training clips (speed {config.speed_range}, SNR {config.noise_snr} dB), "
            f"{seconds['augment']} s")
    history = fit(head, train_frames, train_targets, config, log)
    seconds["train"] = round(time.time() - clock, 1)

    clock = time.time()
    rates, predictions = {}, []
    held_posts, held_refs = [], []
    for loc in data:
        posts = ctc.posteriors(head, frames[loc]["eval"])
        hyps = ["".join(units[u] for u in ctc.greedy_units(p)).strip() for p in posts]
        refs = [normalize(e.text, letters) for e in data[loc]["eval"]]
        rates[loc] = error_rates(refs, hyps)
        predictions += [{"id": e.id, "locale": loc, "file": str(p), "reference": r, "hypothesis": h}
                        for e, p, r, h in zip(data[loc]["eval"], paths[loc]["eval"], refs, hyps)]
        held_posts += ctc.posteriors(head, frames[loc]["heldout"])
        held_refs += unit_targets(data[loc]["heldout"])
        held_hyps = ["".join(units[u] for u in ctc.greedy_units(p)).strip() for p in held_posts[-len(data[loc]["heldout"]):]]
        rates[loc]["heldout_cer"] = error_rates([normalize(e.text, letters) for e in data[loc]["heldout"]],
                                                held_hyps)["cer"]
    stats = confusions(held_posts, held_refs, len(units))
    seconds["measure"] = round(time.time() - clock, 1)
    _log_rates(rates, log)
    word_readings = None
    if config.lexicon_words:
        clock = time.time()
        # The held-out clips (posteriors already computed above, in the same locale order) and the sweep.
        posts = held_posts + [p for loc in data for p in ctc.posteriors(head, frames[loc]["lexicon"])]
        clips = [e for loc in data for e in data[loc]["heldout"]] + [e for loc in data for e in data[loc]["lexicon"]]
        word_readings = readings.build([ctc.segments(p) for p in posts], [normalize(e.text, letters) for e in clips],
                                       units)
        seconds["readings"] = round(time.time() - clock, 1)
        found = readings.Readings.from_tensors(word_readings)
        log(f"pretrain: word readings of {len(found)} words ({found.count()} readings) from {len(clips)} held-out "
            f"clips, {seconds['readings']} s")

    with atomic_open(out / "bridge.safetensors", "wb", encoding=None) as handle:
        from safetensors.torch import save

        handle.write(save({k: v.contiguous() for k, v in head.state_dict().items()}))
    save_file(stats, str(out / "confusions.tmp"))
    (out / "confusions.tmp").replace(out / "confusions.safetensors")
    if word_readings is not None:
        save_file(word_readings, str(out / "readings.tmp"))
        (out / "readings.tmp").replace(out / readings.READINGS_FILE)
    vocabulary = Vocabulary.for_locales(config.model_locales)
    write_json(out / "bridge.json", {"head": head.config(), "units": units, "ears": config.ears,
                                     "window_s": config.window_s, "vocabulary": vocabulary.to_dict()})
    with atomic_open(out / "predictions.jsonl") as handle:
        handle.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions)
    write_json(out / "metrics.json", {"rates": rates, "history": history, "seconds": seconds})
    write_json(summary, {"done": True, "rates": rates, "seconds": seconds, "folder": str(out)})
    log(f"pretrain: done in {sum(seconds.values()):.0f} s; bridge in {out}")
    return out


def _log_rates(rates: dict[str, dict], log) -> None:
    log("pretrain: bridge on SLU dev speech by test speakers (no template or filler shared with its pool): "
        + ", ".join(f"{loc} CER {100 * r['cer']:.1f} % WER {100 * r['wer']:.1f} % (held-out unlabelled CER "
                    f"{100 * r['heldout_cer']:.1f} %)" for loc, r in rates.items()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML config (default: configs/tiny/pretrain.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override config fields, e.g. epochs=8 word_sequences=8000 head.layers=2")


def run(args: argparse.Namespace) -> int:
    path = resolve_config(args.config) if args.config else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    out = pretrain(load_config(path, args.overrides))
    print(out)
    return 0
