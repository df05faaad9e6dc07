"""Schemes, schedules, the sampler, the LR schedule and the config: pure data, no model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from slufit.errors import SlufitError
from slufit.train.config import Config, SchemeConfig, StageConfig, Trainable, config_from_dict, load_config
from slufit.train.loop import lr_at, plan_schedule
from slufit.train.sampler import StageSampler, epoch_batches
from slufit.train.schemes import Dataset, build_schedule, speech_budget, stage_configs

from test_train_support import make_corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    # 16 training examples, the first 4 with one recording each.
    return make_corpus(tmp_path_factory.mktemp("corpus"), n_train=16, train_speech=4)


def config_for(corpus, **scheme) -> Config:
    return config_from_dict({"data": {"train": [str(corpus["train"])]}, "scheme": scheme,
                             "train": {"batch_size": 4, "seed": 3}})


def schedule(config: Config):
    train = Dataset.read(config.data.train)
    return build_schedule(config, train, set(speech_budget(config, train)["ids"]))


def test_text_only_draws_every_example_as_text_and_freezes_audio_parts(corpus):
    [stage] = schedule(config_for(corpus, name="text_only", epochs=3))
    assert stage.counts() == {"text": 16, "speech": 0, "rehearsal": 0}
    assert stage.trainable == Trainable(audio_encoder=False, projector=False, language_model=True)
    assert stage.epochs == 3 and stage.lr == 5e-6 and stage.warmup_ratio == 0.04


def test_speech_only_and_mix_draw_the_budgeted_recordings(corpus):
    [speech] = schedule(config_for(corpus, name="speech_only"))
    assert speech.counts() == {"text": 0, "speech": 4, "rehearsal": 0}
    assert all(i.audio_path.is_file() for i in speech.items)
    [mixed] = schedule(config_for(corpus, name="mix", trainable={"audio_encoder": False}))
    assert mixed.counts() == {"text": 16, "speech": 4, "rehearsal": 0}
    assert mixed.trainable == Trainable(audio_encoder=False, projector=True, language_model=True)


def test_curriculum_is_text_epochs_then_mixing_at_its_own_lr(corpus):
    text, mixed = schedule(config_for(corpus, name="curriculum"))
    assert (text.name, text.epochs, text.counts()["speech"], text.trainable.audio_encoder) == ("text", 2, 0, False)
    assert (mixed.name, mixed.epochs, mixed.lr, mixed.warmup_ratio) == ("mix", 1, 3e-6, 0.02)
    assert mixed.counts() == {"text": 16, "speech": 4, "rehearsal": 0} and mixed.trainable == Trainable()


def test_curriculum_ramp_raises_the_speech_share(corpus):
    stages = schedule(config_for(corpus, name="curriculum", curriculum="ramp", ramp_stages=3, epochs=3))
    assert [s.counts()["speech"] for s in stages] == [0, 2, 4]
    assert [s.counts()["text"] for s in stages] == [16, 16, 16]
    assert [s.epochs for s in stages] == [1, 1, 1]


def test_explicit_stages_with_repeats(corpus):
    stages = schedule(config_for(corpus, name="curriculum", stages=[
        {"name": "warm", "text": True, "speech": False, "epochs": 0.5, "lr": 1e-4},
        {"name": "speech", "text": False, "speech": True, "speech_share": 2.5, "warmup_ratio": 0.0}]))
    assert [s.name for s in stages] == ["warm", "speech"]
    assert stages[1].counts()["speech"] == 10  # 2 whole repeats of 4 + a seeded half
    assert stages[0].lr == 1e-4 and stages[1].lr == 5e-6 and stages[1].warmup_ratio == 0.0


def test_crosslingual_budget_is_source_speech_plus_target_speech(tmp_path):
    from test_train_support import make_examples
    from slufit.data.example import write_examples

    write_examples(tmp_path / "fr.jsonl", make_examples("fr", 8, {0, 1, 2}, tmp_path / "audio", "fr-FR"))
    write_examples(tmp_path / "de.jsonl", make_examples("de", 6, {0}, tmp_path / "audio", "de-DE"))
    config = config_from_dict({"data": {"train": [str(tmp_path / "fr.jsonl"), str(tmp_path / "de.jsonl")]},
                               "scheme": {"name": "crosslingual", "source_locale": "fr-FR",
                                          "target_locales": ["de-DE"], "target_speech_count": 1}})
    [stage] = schedule(config)
    assert stage.counts() == {"text": 14, "speech": 4, "rehearsal": 0}
    assert {i.example.locale for i in stage.items if i.modality == "speech"} == {"fr-FR", "de-DE"}
    config.scheme.target_speech_count = 2  # de-DE has only one example with audio
    with pytest.raises(SlufitError, match="target_speech_count=2 but only 1 de-DE"):
        schedule(config)
    with pytest.raises(ValueError, match="source_locale"):
        SchemeConfig(name="crosslingual", target_locales=["de-DE"])


def test_budget_ids_without_recordings_are_rejected(corpus, tmp_path):
    from slufit.files import write_json

    write_json(tmp_path / "budget.json", {"seed": 0, "strategy": "random", "fraction": None, "count": 1,
                                          "ids": ["tr-9"]})
    config = config_for(corpus, name="mix")
    config.data.budget = str(tmp_path / "budget.json")
    pytest.importorskip("slufit.data.budget")
    with pytest.raises(SlufitError, match="tr-9.*no recordings"):
        schedule(config)


def test_sampler_batches_are_single_modality_cover_each_item_once_and_are_seeded(corpus):
    [stage] = schedule(config_for(corpus, name="mix", epochs=2))
    sampler = StageSampler(stage, 0, seed=3, batch_size=3, bucket_batches=2)
    assert len(sampler) == 2 * (math.ceil(16 / 3) + math.ceil(4 / 3))
    batches = list(sampler)
    assert all(len({i.modality for i in items}) == 1 and kind == items[0].modality for kind, items in batches)
    first_epoch = [i for _, items in batches[:len(sampler) // 2] for i in items]
    assert sorted(map(id, first_epoch)) == sorted(map(id, stage.items))
    again = StageSampler(stage, 0, seed=3, batch_size=3, bucket_batches=2)
    assert [[id(i) for i in b] for _, b in again] == [[id(i) for i in b] for _, b in batches]
    other = StageSampler(stage, 0, seed=4, batch_size=3, bucket_batches=2)
    assert [[id(i) for i in b] for _, b in other] != [[id(i) for i in b] for _, b in batches]
    # Resuming at batch 5 yields exactly the rest.
    assert [[id(i) for i in b] for _, b in sampler.iterate(5)] == [[id(i) for i in b] for _, b in batches[5:]]


def test_fractional_epochs_take_the_first_part_of_a_pass(corpus):
    [stage] = schedule(config_for(corpus, name="text_only", epochs=1.5))
    assert len(StageSampler(stage, 0, 0, batch_size=4, bucket_batches=1)) == 6  # 1.5 x 4 batches


def test_length_buckets_group_similar_lengths():
    lengths = list(range(64))
    batches = epoch_batches(["text"] * 64, lengths, batch_size=8, bucket_batches=8, seed="x")
    # One window holds every item: each batch is 8 consecutive lengths.
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) == 7 for b in batches)


def test_lr_warms_up_then_decays_per_stage():
    plans = [{"steps": 10, "warmup_steps": 2, "lr": 1e-3}, {"steps": 5, "warmup_steps": 0, "lr": 5e-4}]
    lrs = [lr_at(s, plans) for s in range(15)]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[2:10], lrs[3:10]))
    assert lrs[10] == pytest.approx(5e-4) and lrs[14] < lrs[10] and lr_at(15, plans) == 0.0


def test_plan_counts_steps_with_gradient_accumulation(corpus):
    config = config_for(corpus, name="curriculum")
    config.train.grad_accum = 2
    _, plans, budget, accum = plan_schedule(config)
    assert accum == 2 and len(budget["ids"]) == 4
    assert [(p["batches"], p["steps"]) for p in plans] == [(8, 4), (5, 3)]
    assert plans[1]["lr"] == 3e-6
    config.train.global_batch = 16
    assert plan_schedule(config)[3] == 4
    config.train.global_batch = 10
    with pytest.raises(SlufitError, match="global_batch"):
        plan_schedule(config)


def test_config_overrides_and_errors_name_the_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("scheme:\n  name: mix\ntrain:\n  lr: 5e-6\n")
    config = load_config(path, ["train.lr=1e-5", "data.train=[a.jsonl, b.jsonl]", "scheme.trainable.audio_encoder=false"])
    assert config.train.lr == 1e-5 and config.data.train == ["a.jsonl", "b.jsonl"]
    assert config.scheme.trainable == Trainable(audio_encoder=False)
    assert config.run_dir == "runs/run"
    with pytest.raises(SlufitError, match=r"run.yaml: train.lrr: unknown field"):
        load_config(path, ["train.lrr=1"])
    with pytest.raises(SlufitError, match=r"scheme.name must be one of"):
        load_config(path, ["scheme.name=bogus"])
    with pytest.raises(SlufitError, match=r"train.batch_size: expected int"):
        load_config(path, ["train.batch_size=big"])
    with pytest.raises(ValueError, match="neither text nor speech"):
        StageConfig("x", text=False, speech=False)


def test_stages_only_for_curriculum(corpus):
    config = config_for(corpus, name="mix", stages=[{"name": "a"}])
    with pytest.raises(SlufitError, match="scheme.stages"):
        stage_configs(config)


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*/*.yaml")
                                        if p.parent.name in ("tiny", "qwen2_audio") and p.name != "pretrain.yaml"))
def test_shipped_configs_load_and_validate(path):
    config = load_config(REPO / path)
    assert stage_configs(config)
    first = (REPO / path).read_text().splitlines()
    assert first[0].startswith("# ") and any("Launch:" in line for line in first[:4]), "open with how to launch it"
    if "qwen2_audio" in path:  # the study's hyperparameters
        t = config.train
        assert (t.lr, t.warmup_ratio, t.global_batch, t.mixed_precision, config.eval.beams) == (5e-6, 0.04, 128, "bf16", 3)


def test_speech_fraction_draws_a_nested_budget(tmp_path):
    corpus = make_corpus(tmp_path, n_train=20, train_speech=20)
    ids = {}
    for fraction in (0.1, 0.25, 0.5):
        config = config_for(corpus, name="mix")
        config.data.speech_fraction = fraction
        [stage] = schedule(config)
        ids[fraction] = {i.example.id for i in stage.items if i.modality == "speech"}
        assert len(ids[fraction]) == round(fraction * 20)
    assert ids[0.1] < ids[0.25] < ids[0.5]


def test_scheme_rehearsal_goes_to_every_built_in_stage(corpus, tmp_path):
    pool = make_corpus(tmp_path, n_train=6, train_speech=6)["train"]
    config = config_from_dict({"data": {"train": [str(corpus["train"])], "rehearsal": str(pool)},
                               "scheme": {"name": "curriculum", "rehearsal": 0.5}, "train": {"batch_size": 4}})
    assert [s.rehearsal for s in stage_configs(config)] == [0.5, 0.5]
    train = Dataset.read(config.data.train)
    text, mixed = build_schedule(config, train, set(speech_budget(config, train)["ids"]), Dataset.read([str(pool)]))
    assert text.counts() == {"text": 16, "speech": 0, "rehearsal": 8}
    assert mixed.counts() == {"text": 16, "speech": 4, "rehearsal": 10}
    [only] = stage_configs(config_for(corpus, name="text_only", rehearsal=0.25))
    assert only.rehearsal == 0.25
