"""Fine-tuning schemes as data schedules.

A scheme never touches the training loop: it only says which items flow in and
when. A schedule is a list of stages; each stage draws text items (one per
training example of its locales) and/or speech items (the recordings of the
budgeted examples), for some epochs, at its own peak learning rate and warm-up,
training some parts of the model. The built-in schemes are small functions from
`SchemeConfig` to a list of `StageConfig` (a literal dict, `SCHEMES`):

    text_only    every training example as a text item; audio encoder and projector frozen
    speech_only  only the budgeted speech items
    mix          all text items plus the budgeted speech items, shuffled together
    curriculum   text-only epochs, then direct mixing at its own LR (the study: 2 + 1, 3e-6, 0.02),
                 or `ramp` (the speech share rises stage by stage), or any explicit list of stages
    crosslingual source-locale speech (budget P) and text, target-locale text, optionally K
                 target-locale speech items per target locale; mixed or as the curriculum

`build_schedule` turns those stage configs and the data into `Stage`s holding the
actual items, with explicit seeds, so that the same config and data always give
the same schedule.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from slufit.data.example import Example, read_examples, resolve_audio
from slufit.errors import SlufitError
from slufit.models.base import SLUItem
from slufit.train.config import Config, SchemeConfig, StageConfig, Trainable

LM_ONLY = Trainable(audio_encoder=False, projector=False, language_model=True)
EVERYTHING = Trainable()


# ---- the built-in schemes: SchemeConfig -> stage configs ----

def text_only(s: SchemeConfig) -> list[StageConfig]:
    return [StageConfig("text_only", text=True, speech=False, epochs=s.epochs, trainable=s.trainable or LM_ONLY)]


def speech_only(s: SchemeConfig) -> list[StageConfig]:
    return [StageConfig("speech_only", text=False, speech=True, epochs=s.epochs, trainable=s.trainable or EVERYTHING)]


def mix(s: SchemeConfig) -> list[StageConfig]:
    return [StageConfig("mix", text=True, speech=True, epochs=s.epochs, trainable=s.trainable or EVERYTHING)]


def curriculum(s: SchemeConfig) -> list[StageConfig]:
    if s.stages:
        return list(s.stages)
    if s.curriculum == "ramp":
        # Equal stages; stage k draws a share k/(n-1) of the speech items (0 at first, all at last).
        n, each = s.ramp_stages, s.epochs / s.ramp_stages
        return [StageConfig(f"ramp{k}", text=True, speech=k > 0, speech_share=k / (n - 1), epochs=each,
                            trainable=LM_ONLY if k == 0 else (s.trainable or EVERYTHING)) for k in range(n)]
    stages = [StageConfig("text", text=True, speech=False, epochs=s.text_epochs, trainable=LM_ONLY)] if s.text_epochs else []
    return stages + [StageConfig("mix", text=True, speech=True, epochs=s.mix_epochs, lr=s.mix_lr,
                                 warmup_ratio=s.mix_warmup_ratio, trainable=s.trainable or EVERYTHING)]


def crosslingual(s: SchemeConfig) -> list[StageConfig]:
    # Which examples may use speech is the budget's business (source P + target K, see speech_budget);
    # the stages are the ordinary mixing or curriculum ones over every training locale.
    return curriculum(s) if s.order == "curriculum" or s.stages else mix(s)


SCHEMES: dict[str, Callable[[SchemeConfig], list[StageConfig]]] = {
    "text_only": text_only,
    "speech_only": speech_only,
    "mix": mix,
    "curriculum": curriculum,
    "crosslingual": crosslingual,
}


# ---- data: examples with the file they came from ----

@dataclass
class Dataset:
    """Examples of one or more canonical JSONL files; `files[i]` is where `examples[i]` came from."""

    examples: list[Example]
    files: list[Path]

    @staticmethod
    def read(paths: list[str]) -> "Dataset":
        examples, files, seen = [], [], {}
        for path in paths:
            for example in read_examples(path):
                if example.id in seen:
                    raise SlufitError(f"{path}: id {example.id!r} is also in {seen[example.id]}")
                seen[example.id] = path
                examples.append(example)
                files.append(Path(path))
        return Dataset(examples, files)

    def locales(self) -> list[str]:
        return sorted({e.locale for e in self.examples})

    def text_items(self, locales: list[str] | None = None) -> list[SLUItem]:
        return [SLUItem(e, "text") for e in self.examples if locales is None or e.locale in locales]

    def speech_items(self, ids: set[str] | None = None, locales: list[str] | None = None) -> list[SLUItem]:
        """One item per recording of the examples in `ids` (all examples when None)."""
        items = []
        for example, file in zip(self.examples, self.files):
            if (ids is None or example.id in ids) and (locales is None or example.locale in locales):
                items += [SLUItem(example, "speech", resolve_audio(r, file), r.speaker) for r in example.recordings]
        return items


def speech_budget(config: Config, train: Dataset) -> dict[str, Any]:
    """The budget manifest: which training examples may be used as speech.

    From `data.budget` (a manifest file), or drawn by slufit.data.budget from `data.speech_fraction`
    / `data.speech_count` (over the source locale for crosslingual, plus `scheme.target_speech_count`
    per target locale, drawn among that locale's examples with recordings). With none of these,
    every example (of the source locale for crosslingual) with a recording may be used as speech.
    """
    d, s = config.data, config.scheme
    pool = [e for e in train.examples if s.name != "crosslingual" or e.locale == s.source_locale]
    if d.budget:
        from slufit.data.budget import read_budget
        manifest = dict(read_budget(d.budget))
    elif d.speech_fraction is not None or d.speech_count is not None:
        from slufit.data.budget import draw_budget
        manifest = dict(draw_budget(pool, fraction=d.speech_fraction, count=d.speech_count,
                                    strategy=d.budget_strategy, seed=d.budget_seed))
    else:
        manifest = {"fraction": 1.0, "count": None, "ids": [e.id for e in pool if e.recordings]}
    if s.name == "crosslingual" and s.target_speech_count:
        from slufit.data.budget import draw_budget
        manifest["target"] = {}
        for locale in s.target_locales:
            pool = [e for e in train.examples if e.locale == locale and e.recordings]
            if len(pool) < s.target_speech_count:
                raise SlufitError(f"scheme.target_speech_count={s.target_speech_count} but only {len(pool)} {locale} "
                                  f"training examples have recordings")
            drawn = draw_budget(pool, count=s.target_speech_count, strategy=d.budget_strategy, seed=d.budget_seed)
            manifest["target"][locale] = list(drawn["ids"])
            manifest["ids"] = list(manifest["ids"]) + list(drawn["ids"])
    known = {e.id: e for e in train.examples}
    for example_id in manifest["ids"]:
        if example_id not in known:
            raise SlufitError(f"speech budget lists id {example_id!r}, which is not in data.train")
        if not known[example_id].recordings:
            raise SlufitError(f"speech budget example {example_id!r} has no recordings in data.train; "
                              f"synthesize speech for it first (slufit speech)")
    return manifest


# ---- the schedule: stages holding their items ----

@dataclass
class Stage:
    """One stage as run: its items for one pass, and how long and how fast it trains on them."""

    name: str
    items: list[SLUItem]
    epochs: float
    lr: float
    warmup_ratio: float
    trainable: Trainable
    # Speech->transcript items from the rehearsal pool (trained with the pretraining objective).
    rehearsal: list[SLUItem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"text": sum(i.modality == "text" for i in self.items),
                "speech": sum(i.modality == "speech" for i in self.items), "rehearsal": len(self.rehearsal)}


def stage_configs(config: Config) -> list[StageConfig]:
    s = config.scheme
    if s.stages and s.name not in ("curriculum", "crosslingual"):
        raise SlufitError(f"scheme.stages is for curriculum or crosslingual, not {s.name}")
    stages = SCHEMES[s.name](s)
    if s.rehearsal and not s.stages:  # explicit stages set their own rehearsal
        stages = [dataclasses.replace(stage, rehearsal=s.rehearsal) for stage in stages]
    return stages


def _share(items: list[SLUItem], share: float, rng: random.Random) -> list[SLUItem]:
    """`share` x the items: whole repeats, then a seeded subset for the fractional part."""
    whole, part = divmod(share, 1.0)
    return items * int(whole) + rng.sample(items, round(part * len(items)))


def build_schedule(config: Config, train: Dataset, budget_ids: set[str], rehearsal_pool: Dataset | None = None
                   ) -> list[Stage]:
    """Stages with their items, in a fixed order (the sampler shuffles them with the run's seed)."""
    stages = []
    for index, sc in enumerate(stage_configs(config)):
        rng = random.Random(f"{config.train.seed}/stage{index}")  # explicit per-stage seed
        items = train.text_items(sc.text_locales) if sc.text else []
        if sc.speech:
            items += _share(train.speech_items(budget_ids, sc.speech_locales), sc.speech_share, rng)
        rehearsal: list[SLUItem] = []
        if sc.rehearsal:
            if rehearsal_pool is None:
                raise SlufitError(f"stage {sc.name!r} asks for rehearsal but data.rehearsal is not set")
            pool = rehearsal_pool.speech_items()
            if not pool:
                raise SlufitError(f"data.rehearsal: no recordings in {config.data.rehearsal}")
            rehearsal = _share(pool, sc.rehearsal * len(items) / len(pool), rng)
        if not items:
            raise SlufitError(f"stage {sc.name!r} has no items: no {'speech' if sc.speech else 'text'} items in "
                              f"data.train for its locales" + (" and speech budget" if sc.speech else ""))
        stages.append(Stage(sc.name, items, sc.epochs, sc.lr or config.train.lr,
                            config.train.warmup_ratio if sc.warmup_ratio is None else sc.warmup_ratio,
                            sc.trainable or EVERYTHING, rehearsal))
    return stages


def stage_plan(stage: Stage, batches_per_epoch: int, grad_accum: int) -> dict[str, Any]:
    """Batches, optimizer steps and warm-up steps of a stage (what schedule.json and --dry-run show)."""
    batches = max(1, round(stage.epochs * batches_per_epoch))
    steps = math.ceil(batches / grad_accum)
    return {"batches": batches, "steps": steps, "warmup_steps": round(stage.warmup_ratio * steps)}
