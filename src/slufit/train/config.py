"""The run configuration: plain dataclasses, each field documented where it is declared
and checked in `__post_init__`.

A run is described by one YAML file (see configs/), optionally overridden on the
command line with dotted `key=value` pairs (`train.lr=1e-5 scheme.name=mix`); values
are parsed as YAML, so `data.train=[a.jsonl,b.jsonl]` is a list. The resolved config
is written to RUN_DIR/config.yaml before training starts, and `--resume` reads it back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slufit.errors import SlufitError
from slufit.files import read_yaml_mapping

SCHEMES = ("text_only", "speech_only", "mix", "curriculum", "crosslingual")
CURRICULUM_KINDS = ("two_stage", "ramp")
PRECISIONS = ("no", "bf16", "fp16")
DTYPES = ("auto", "float32", "bfloat16", "float16")
MODALITIES = ("speech", "text")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class Trainable:
    """Which parts of the model a stage trains (passed to `SLUModel.set_trainable`)."""

    audio_encoder: bool = True
    projector: bool = True
    # With LoRA this means the language model's adapters.
    language_model: bool = True

    def __post_init__(self) -> None:
        _check(self.audio_encoder or self.projector or self.language_model, "at least one part must train")


@dataclass
class StageConfig:
    """One stage of an explicit schedule (`scheme.stages`): which items it draws, for how long, how fast."""

    name: str
    # One text item per training example (of `text_locales`).
    text: bool = True
    # The recordings of the budgeted examples (of `speech_locales`) as speech items.
    speech: bool = False
    # Share of the budgeted speech items drawn in this stage (a seeded subset below 1, repeats above 1).
    speech_share: float = 1.0
    # Locales whose examples give text / speech items; null means every training locale.
    text_locales: list[str] | None = None
    speech_locales: list[str] | None = None
    # Passes over this stage's items (fractional: the first part of the last pass).
    epochs: float = 1.0
    # Peak learning rate and warm-up ratio of this stage's cosine schedule; null means train.lr / train.warmup_ratio.
    lr: float | None = None
    warmup_ratio: float | None = None
    # Parts trained in this stage; null means the scheme's default.
    trainable: Trainable | None = None
    # Rehearsal of the pretraining objective: speech->transcript items from `data.rehearsal`,
    # as a fraction of this stage's other items (0 = none).
    rehearsal: float = 0.0

    def __post_init__(self) -> None:
        _check(bool(self.name), "stage name must not be empty")
        _check(self.text or self.speech, f"stage {self.name!r} draws neither text nor speech")
        _check(self.epochs > 0, f"stage {self.name!r}: epochs must be > 0")
        _check(self.speech_share >= 0, f"stage {self.name!r}: speech_share must be >= 0")
        _check(self.lr is None or self.lr > 0, f"stage {self.name!r}: lr must be > 0")
        _check(self.warmup_ratio is None or 0 <= self.warmup_ratio < 1, f"stage {self.name!r}: warmup_ratio in [0, 1)")
        _check(self.rehearsal >= 0, f"stage {self.name!r}: rehearsal must be >= 0")


@dataclass
class SchemeConfig:
    """Which fine-tuning scheme turns the data into a schedule of stages (slufit.train.schemes)."""

    # text_only | speech_only | mix | curriculum | crosslingual.
    name: str = "mix"
    # Total passes for text_only, speech_only and mix (and crosslingual with order=mix).
    epochs: float = 3.0
    # Parts trained; null means the scheme's default (text_only: language model only; others: everything).
    trainable: Trainable | None = None
    # curriculum: two_stage (text-only epochs, then direct mixing) or ramp (the speech share rises stage by stage).
    curriculum: str = "two_stage"
    # curriculum two_stage: text-only passes, then mixed passes with their own peak LR and warm-up
    # (the study's Qwen2-Audio values: 2, 1, 3e-6, 0.02). Null LR / warm-up fall back to train.*.
    text_epochs: float = 2.0
    mix_epochs: float = 1.0
    mix_lr: float | None = 3e-6
    mix_warmup_ratio: float | None = 0.02
    # curriculum ramp: number of one-pass stages; stage k draws a share k/(n-1) of the speech items.
    ramp_stages: int = 3
    # Any explicit list of stages; when given it is the schedule (name only labels the run).
    stages: list[StageConfig] = field(default_factory=list)
    # crosslingual: the locale whose speech budget is data.speech_fraction / speech_count ...
    source_locale: str | None = None
    # ... the target locales (text items, optional speech, every one evaluated) ...
    target_locales: list[str] = field(default_factory=list)
    # ... K target-locale examples per target locale that may use speech (Speech-MASSIVE train_115: 115) ...
    target_speech_count: int = 0
    # ... and whether the data is mixed in one stage (mix) or follows the curriculum above.
    order: str = "mix"
    # Rehearsal of the pretraining objective in every stage of the built-in schemes (not in explicit
    # `stages`, which set their own): speech->transcript items from data.rehearsal, as a share of each
    # stage's other items (StageConfig.rehearsal). 0: none.
    rehearsal: float = 0.0

    def __post_init__(self) -> None:
        _check(self.name in SCHEMES, f"scheme.name must be one of {', '.join(SCHEMES)}, got {self.name!r}")
        _check(self.epochs > 0, "scheme.epochs must be > 0")
        _check(self.curriculum in CURRICULUM_KINDS, f"scheme.curriculum must be one of {', '.join(CURRICULUM_KINDS)}")
        _check(self.text_epochs >= 0 and self.mix_epochs > 0, "scheme.text_epochs >= 0 and scheme.mix_epochs > 0")
        _check(self.ramp_stages >= 2, "scheme.ramp_stages must be >= 2")
        _check(self.order in ("mix", "curriculum"), "scheme.order must be mix or curriculum")
        _check(self.target_speech_count >= 0, "scheme.target_speech_count must be >= 0")
        _check(self.rehearsal >= 0, "scheme.rehearsal must be >= 0")
        if self.name == "crosslingual":
            _check(bool(self.source_locale), "scheme.source_locale is required for crosslingual")
            _check(bool(self.target_locales), "scheme.target_locales is required for crosslingual")
            _check(self.source_locale not in self.target_locales, "scheme.source_locale is also a target locale")


@dataclass
class ModelConfig:
    """The model: a registry name (`tiny`, `qwen2-audio-7b-instruct`) or a hub id / local folder."""

    name: str = "tiny"
    # The dtype the weights load in (slufit.train.precision): auto | float32 | bfloat16 | float16. auto: float32
    # on the CPU; on a GPU bfloat16 (LoRA: the frozen base in bf16, its adapters fp32; full fine-tuning under
    # FSDP: trainable weights upcast to fp32 master copies, which the shards make fit). docs/models.md.
    dtype: str = "auto"
    # Passed to slufit.models.registry.load_model (e.g. lora, transcript_first, gradient_checkpointing).
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(bool(self.name), "model.name must not be empty")
        _check(self.dtype in DTYPES, f"model.dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        _check(not (self.dtype != "auto" and "dtype" in self.options),
               "give the dtype once: model.dtype or model.options.dtype, not both")


@dataclass
class DataConfig:
    """Where the examples come from and which training examples may use speech."""

    # Canonical JSONL files (slufit.data.example); relative paths are relative to the working directory.
    train: list[str] = field(default_factory=list)
    # Evaluated at every stage end (with each of eval.modalities).
    dev: list[str] = field(default_factory=list)
    # Evaluated once at the end.
    test: list[str] = field(default_factory=list)
    # The speech budget: a share or a count of the training examples (of the source locale for
    # crosslingual) drawn by slufit.data.budget, nested across fractions ...
    speech_fraction: float | None = None
    speech_count: int | None = None
    # ... or an existing budget manifest (slufit data budget) listing the ids.
    budget: str | None = None
    # How the budget is drawn (slufit.data.budget strategies) and with which seed.
    budget_strategy: str = "stratified"
    budget_seed: int = 0
    # Unlabelled speech pool (canonical JSONL with recordings) for rehearsal stages.
    rehearsal: str | None = None
    # Share of training text items whose slot fillers are swapped, each time they are drawn, for other fillers
    # of the same slot type and locale from the training text (slufit.train.augment; 0: off).
    filler_swap: float = 0.0

    def __post_init__(self) -> None:
        _check(self.speech_fraction is None or 0 <= self.speech_fraction <= 1, "data.speech_fraction in [0, 1]")
        _check(self.speech_count is None or self.speech_count >= 0, "data.speech_count must be >= 0")
        _check(0 <= self.filler_swap <= 1, "data.filler_swap in [0, 1]")
        given = sum(x is not None for x in (self.speech_fraction, self.speech_count, self.budget))
        _check(given <= 1, "give at most one of data.speech_fraction, data.speech_count, data.budget")


@dataclass
class TrainConfig:
    """Optimisation: AdamW, cosine schedule with warm-up per stage, gradient clipping."""

    seed: int = 0
    # Items per micro-batch on each process.
    batch_size: int = 8
    # Micro-batches per optimizer step; ignored when global_batch is set.
    grad_accum: int = 1
    # Items per optimizer step over all processes (the study: 128); sets grad_accum.
    global_batch: int | None = None
    # Default peak learning rate and warm-up share of each stage's steps (the study: 5e-6, 0.04).
    lr: float = 5e-6
    warmup_ratio: float = 0.04
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    # accelerate mixed precision: no | bf16 | fp16.
    mixed_precision: str = "no"
    # Save checkpoints/last every this many optimizer steps (0: only at stage ends).
    checkpoint_every: int = 0
    # Length buckets: items are sorted by length within windows of this many batches.
    bucket_batches: int = 16
    # TensorBoard scalars every this many optimizer steps.
    log_every: int = 10
    # Speech and rehearsal batches (audio decoding, features, collation) prepared this many batches ahead in a
    # background thread while the model trains (slufit.train.prefetch); 0: on the training thread. None (auto):
    # 2 when the model trains on a GPU, 0 on a CPU, where the thread competes with the step for the same cores
    # (measured on a quiet 2-core machine: the tiny bridge's mixing run 1.4x slower with 2, benchmarks/RESULTS.md).
    prefetch: int | None = None

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1 and self.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1")
        _check(self.global_batch is None or self.global_batch >= self.batch_size,
               "train.global_batch must be >= train.batch_size")
        _check(self.lr > 0, "train.lr must be > 0")
        _check(0 <= self.warmup_ratio < 1, "train.warmup_ratio must be in [0, 1)")
        _check(self.max_grad_norm > 0, "train.max_grad_norm must be > 0")
        _check(self.mixed_precision in PRECISIONS, f"train.mixed_precision must be one of {', '.join(PRECISIONS)}")
        _check(self.checkpoint_every >= 0 and self.bucket_batches >= 1 and self.log_every >= 1 and (self.prefetch or 0) >= 0,
               "train.checkpoint_every >= 0, bucket_batches >= 1, log_every >= 1, prefetch >= 0")


@dataclass
class EvalConfig:
    """Evaluation at stage ends (dev) and at the end (dev and test)."""

    # Input modalities to evaluate with: speech (each recording) and/or text (the transcript).
    modalities: list[str] = field(default_factory=lambda: ["speech", "text"])
    # Beam search width (the study: 3).
    beams: int = 3
    batch_size: int = 16
    max_new_tokens: int = 128
    # Use only the first N dev examples at stage ends (null: all); the final evaluation uses all.
    dev_limit: int | None = None

    def __post_init__(self) -> None:
        bad = [m for m in self.modalities if m not in MODALITIES]
        _check(not bad, f"eval.modalities must be among speech, text; got {bad}")
        _check(self.beams >= 1 and self.batch_size >= 1 and self.max_new_tokens >= 1,
               "eval.beams, eval.batch_size and eval.max_new_tokens must be >= 1")


@dataclass
class Config:
    """One run. Every field has a default except the data files."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    scheme: SchemeConfig = field(default_factory=SchemeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # The run folder (docs/architecture.md); null means runs/<config file name>.
    run_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- building dataclasses from plain dicts, with errors that name the field ----

def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where + '.' if where else ''}{unknown[0]}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _convert(hints[key], value, f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{where or 'config'}: {err}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else _build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML reads 5e-6 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def apply_override(data: dict, override: str) -> None:
    """Apply one `dotted.key=value` (value parsed as YAML) to a nested dict, in place."""
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise SlufitError(f"override {override!r}: expected key=value, e.g. train.lr=1e-5")
    value = yaml.safe_load(raw) if raw.strip() else None
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SlufitError(f"override {override!r}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def config_from_dict(data: dict, source: str = "config") -> Config:
    try:
        return _build(Config, data, "")
    except ValueError as err:
        raise SlufitError(f"{source}: {err}") from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a YAML config, apply `key=value` overrides, validate; errors name the file and field."""
    data = read_yaml_mapping(path) if path is not None else {}
    for override in overrides:
        apply_override(data, override)
    config = config_from_dict(data, str(path) if path else "config")
    if config.run_dir is None and path is not None:
        config.run_dir = str(Path("runs") / Path(path).stem)
    return config


def resolve_paths(config: Config) -> Config:
    """Make every data path absolute (relative to the working directory), so that the saved
    config still works when `--resume` runs from elsewhere."""
    d = config.data
    absolute = lambda p: str(Path(p).expanduser().resolve())  # noqa: E731
    d.train, d.dev, d.test = ([absolute(p) for p in files] for files in (d.train, d.dev, d.test))
    d.budget = absolute(d.budget) if d.budget else None
    d.rehearsal = absolute(d.rehearsal) if d.rehearsal else None
    if config.run_dir:
        config.run_dir = absolute(config.run_dir)
    if Path(config.model.name).expanduser().exists():  # a local model folder, not a registry name or hub id
        config.model.name = absolute(config.model.name)
    return config


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
