"""The tiny default, the CTC-bridge model: units and targets, segments, the SLUModel contract through the real
registry (real Whisper tiny.en ears, a small random CTC head), bridge pretraining, and a 2-step `slufit train`."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from slufit.data.example import Entity, Example, read_examples
from slufit.errors import SlufitError
from slufit.models.base import SLUItem
from slufit.models.bridge import ctc
from slufit.models.bridge.simulate import simulate
from slufit.models.bridge.units import EOS, Vocabulary, alphabet, dropped, normalize
from slufit.models.registry import load_model

from bridge_support import SMALL_LM, make_bridge


def example(text="wake me up at seven am", intent="alarm_set", entities=(("time", "seven am"),), id="x1"):
    scenario, _, action = intent.partition("_")
    return Example(id=id, locale="en-US", text=text, scenario=scenario, action=action, intent=intent,
                   entities=tuple(Entity(t, f) for t, f in entities))


# ---------------------------------------------------------------- units and targets


def test_normalize_folds_accents_and_breaks_on_other_characters():
    en = alphabet(["en-US"])
    assert normalize("Café, 7 o'clock!", en) == "cafe o'clock"  # é folds to e; digits and punctuation break words
    assert dropped("Café, 7 o'clock!", en) == {",", "7", "!"}
    fr = alphabet(["fr-FR"])
    assert normalize("Café", fr) == "café"  # French keeps its accents
    with pytest.raises(SlufitError, match="no alphabet for locale 'xx-XX'"):
        alphabet(["xx-XX"])


def test_compact_target_round_trips_to_a_slurp_prediction():
    vocab = Vocabulary.for_locales(["en-US"])
    ex = example(entities=(("time", "seven am"), ("date", "tuesday")))
    ids = vocab.target_ids(ex)
    assert [vocab.tokens[i] for i in ids[:2]] == ["<I:alarm_set>", "<S:time>"]
    assert ids[-1] == vocab.id(EOS)
    assert vocab.decode_target(ids) == {"scenario": "alarm", "action": "set", "entities": [
        {"type": "time", "filler": "seven am"}, {"type": "date", "filler": "tuesday"}]}
    # Multi-part actions keep everything after the scenario.
    assert vocab.decode_target(vocab.target_ids(example(intent="iot_hue_lightoff", entities=())))["action"] == "hue_lightoff"
    # Tolerant: no intent -> empty labels; an empty filler drops its entity.
    assert vocab.decode_target([vocab.id("<S:date>"), vocab.id(EOS)]) == {"scenario": "", "action": "", "entities": []}


def test_unknown_labels_are_named():
    vocab = Vocabulary.for_locales(["en-US"])
    with pytest.raises(SlufitError, match="intent 'made_up' is not in the tiny model's label space"):
        vocab.target_ids(example(intent="made_up"))
    with pytest.raises(SlufitError, match="entity type 'colour' is not"):
        vocab.target_ids(example(entities=(("colour", "red"),)))


# ---------------------------------------------------------------- segments


def test_segments_average_runs_and_keep_doubled_letters():
    # Frames (blank=0, units 1..3): a a _ a b b _ _  -> runs "aa", "a", "bb" -> 3 segments.
    best = [1, 1, 0, 1, 2, 2, 0, 0]
    post = torch.full((len(best), 4), 0.01)
    for t, b in enumerate(best):
        post[t, b] = 0.97
    seg = ctc.segments(post)
    assert seg.shape == (3, 3)
    assert seg.argmax(-1).tolist() == [0, 0, 1]  # head units (blank removed)
    assert torch.allclose(seg.sum(-1), torch.ones(3))
    assert ctc.greedy_units(post) == [0, 0, 1]
    assert ctc.segments(torch.tensor([[0.9, 0.1]] * 5)).shape == (0, 1)  # all blank: no segments


def test_simulate_uses_the_measured_rows():
    n = 3
    stats = {"emit": torch.cat([torch.eye(n), torch.zeros(n, 1)], 1), "insert": torch.tensor([1.0, 0, 0, 0.0]),
             "rows": torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])}
    out = simulate([0, 2, 2, 1], stats)
    assert torch.equal(out, stats["rows"][[0, 2, 2, 1]])  # no errors measured: each unit as its mean row
    torch.manual_seed(0)
    noisy = simulate([0, 1, 2] * 20, stats, scale=0.0)
    assert noisy.shape[0] == 60
    stats["emit"] = torch.tensor([[0.0, 0, 0, 1.0]] * n)  # every unit deleted
    assert simulate([0, 1], stats).shape == (0, n)


def one_hot_posteriors(units: list[int], n_units: int) -> torch.Tensor:
    """Frames whose argmax spells `units` (a blank between units, so doubled ones stay two)."""
    frames = []
    for u in units:
        frames += [u + 1, ctc.BLANK]
    return torch.nn.functional.one_hot(torch.tensor(frames or [ctc.BLANK]), n_units + 1).float()


def test_confusions_measure_each_unit_in_its_context():
    from slufit.models.bridge.pretrain import CONTEXT_PRIOR, confusions

    n, a, b, edge, deleted = 3, 0, 1, 3, 3
    # "ab" heard as "a" (b dropped at the end), "ba" heard right.
    stats = confusions([one_hot_posteriors([a], n), one_hot_posteriors([b, a], n)], [[a, b], [b, a]], n)
    assert stats["emit"][b, deleted] == 0.5 and stats["emit"][b, b] == 0.5 and stats["emit"][a, a] == 1.0
    at_end, at_start = stats["emit_context"][a, b, edge], stats["emit_context"][edge, b, a]
    # One observation each, smoothed by CONTEXT_PRIOR pseudo-counts of b's own row (half deleted).
    assert at_end[deleted] == pytest.approx((1 + CONTEXT_PRIOR * 0.5) / (1 + CONTEXT_PRIOR))
    assert at_start[deleted] == pytest.approx(CONTEXT_PRIOR * 0.5 / (1 + CONTEXT_PRIOR))
    # A context never seen is the unit's own row.
    assert torch.allclose(stats["emit_context"][b, b, b], stats["emit"][b])
    assert torch.allclose(stats["emit_context"].sum(-1), torch.ones(n + 1, n, n + 1))


def test_simulate_with_context_draws_from_the_context_rows():
    n = 3
    keep = torch.cat([torch.eye(n), torch.zeros(n, 1)], 1)
    context = keep[None, :, None, :].repeat(n + 1, 1, n + 1, 1)
    context[0, 1, n] = torch.tensor([0.0, 0, 0, 1.0])  # unit 1 after unit 0 at the end: always deleted
    stats = {"emit": keep, "emit_context": context, "insert": torch.tensor([1.0, 0, 0, 0.0]), "rows": torch.eye(n)}
    torch.manual_seed(0)
    assert torch.equal(simulate([0, 1], stats, context=True), torch.eye(n)[[0]])
    assert torch.equal(simulate([1, 0], stats, context=True), torch.eye(n)[[1, 0]])  # another context: kept
    assert torch.equal(simulate([0, 1], stats), torch.eye(n)[[0, 1]])  # without context: the unit's own row


# ---------------------------------------------------------------- the model through the registry


@pytest.fixture(scope="module")
def voiced(tmp_path_factory):
    """Four corpus examples voiced by test speakers, and a bridge folder."""
    from slufit.corpus import build_corpus
    from slufit.speech import synthesize_examples

    root = tmp_path_factory.mktemp("bridge")
    build_corpus(root / "corpus", locales=["en-US"], n_train=8, n_dev=0, n_test=4, n_pretrain=0, seed=0)
    examples = read_examples(root / "corpus" / "en-US" / "test.jsonl")
    spoken = synthesize_examples(examples, root / "speech", speakers="test", progress=False, workers=1)
    return {"root": root, "bridge": make_bridge(root / "bridge"), "examples": spoken,
            "speech": [SLUItem(e, "speech", root / "speech" / e.recordings[0].path) for e in spoken],
            "text": [SLUItem(e, "text") for e in spoken]}


@pytest.fixture
def model(voiced):
    torch.manual_seed(0)
    return load_model(str(voiced["bridge"]), lm_sizes=SMALL_LM)


def test_labels_cover_the_target_only(model, voiced):
    for items in (voiced["text"], voiced["speech"]):
        batch = model.collate(items)
        for row, item in enumerate(items):
            target = model.vocab.target_ids(item.example)
            kept = batch["labels"][row][batch["labels"][row] != -100].tolist()
            assert kept == target  # exactly the compact target and its <eos>
            # ... and it sits at the end of the row's real tokens (right padding).
            n = int(batch["attention_mask"][row].sum())
            assert batch["input_ids"][row, n - len(target): n].tolist() == target
    text = model.collate(voiced["text"])
    assert "dists" not in text  # plain text items read unit embeddings only
    speech = model.collate(voiced["speech"])
    assert speech["dist_mask"].any(dim=1).all()  # every recording gave bridge segments
    assert torch.isfinite(model.loss(text)) and torch.isfinite(model.loss(speech))


def test_speech_reads_the_lm_unit_embeddings(model, voiced):
    """A segment's input vector is its posterior-weighted sum of the LM's own unit embeddings."""
    batch = model.collate(voiced["speech"][:1])
    embeds = model.module.embed(batch["input_ids"], batch["dists"], batch["dist_mask"])
    position = int(batch["dist_mask"][0].nonzero()[0])
    table = model.module.lm.get_input_embeddings().weight
    expected = batch["dists"][0, position] @ table[model.module.head_rows]
    assert torch.allclose(embeds[0, position], expected, atol=1e-6)
    # Gradients reach the unit embeddings through speech items.
    model.loss(model.collate(voiced["speech"])).backward()
    assert table.grad[model.module.head_rows].abs().sum() > 0


def test_segments_are_cached_per_recording(model, voiced):
    first = model.segments(voiced["speech"])
    misses = model.cache.misses
    again = model.segments(voiced["speech"])
    assert model.cache.misses == misses  # nothing recomputed
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    # The cached segments equal a fresh computation through the ears and the head (the same batch).
    from slufit.data.audio import load_audio

    frames = model.ears.encode([load_audio(item.audio_path) for item in voiced["speech"]])
    fresh = [ctc.segments(p) for p in ctc.posteriors(model.module.head, frames)]
    assert all(torch.allclose(f, c, atol=1e-6) for f, c in zip(fresh, first))


def test_ears_and_head_stay_frozen(model):
    model.set_trainable(audio_encoder=True, projector=True, language_model=True)
    assert not any(p.requires_grad for p in model.module.head.parameters())
    assert not any(p.requires_grad for p in model.ears.tower.parameters())
    assert all(p.requires_grad for p in model.module.lm.parameters())


def test_batched_generation_equals_one_by_one(model, voiced):
    for items in (voiced["speech"], voiced["text"]):
        batched = model.generate(items, num_beams=1, max_new_tokens=12)
        single = [model.generate([item], num_beams=1, max_new_tokens=12)[0] for item in items]
        assert batched == single
        assert all(set(json.loads(line)) == {"scenario", "action", "entities"} for line in batched)
    assert len(model.generate(voiced["text"], num_beams=3, max_new_tokens=8)) == len(voiced["text"])


def test_save_load_round_trip(model, voiced, tmp_path):
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "lm" / "model.safetensors").is_file()
    again = load_model(str(tmp_path / "model"))
    batch = model.collate(voiced["speech"])
    model.module.eval(), again.module.eval()
    assert torch.allclose(model.loss(batch), again.loss(batch), atol=1e-6)
    assert again.generate(voiced["speech"], max_new_tokens=10) == model.generate(voiced["speech"], max_new_tokens=10)


def test_silent_and_long_recordings_are_warned_not_fatal(model, tmp_path):
    from slufit.data.audio import write_audio

    silent, long = tmp_path / "silent.wav", tmp_path / "long.wav"
    write_audio(silent, np.zeros(16000, dtype=np.float32))
    write_audio(long, (0.1 * np.sin(np.arange(16000 * 7) / 5)).astype(np.float32))
    items = [SLUItem(example(id="s"), "speech", silent), SLUItem(example(id="l"), "speech", long)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segments = model.segments(items)
    messages = " ".join(str(w.message) for w in caught)
    assert "silent" in messages and "hears it as silence" in messages
    assert "7.0 s is longer than the tiny model's 5 s audio window" in messages
    assert segments[0].shape[0] == 0
    assert len(model.generate(items, max_new_tokens=6)) == 2  # an empty input still gets a prediction


def test_lalm_only_options_are_refused(voiced):
    with pytest.raises(SlufitError, match="does not take lora"):
        load_model(str(voiced["bridge"]), lora={"r": 4})
    with pytest.raises(SlufitError, match="options of the tiny bridge only"):
        load_model(str(voiced["root"] / "nothing-here"), simulate_text=0.5)


def test_simulated_text_items_read_posterior_rows(voiced):
    torch.manual_seed(0)
    model = load_model(str(voiced["bridge"]), lm_sizes=SMALL_LM, simulate_text=1.0)
    batch = model.collate(voiced["text"])
    assert batch["dist_mask"].any(dim=1).all()  # every text item simulated in training
    rows = batch["dists"][batch["dist_mask"]]
    assert torch.allclose(rows.sum(-1), torch.ones(len(rows)), atol=1e-5)
    assert "dists" not in model.collate(voiced["text"], with_targets=False)  # never at evaluation
    # Context draws need a bridge measured with context rows; this test bridge has none.
    with pytest.raises(SlufitError, match="simulate_context needs a bridge whose confusions have context rows"):
        load_model(str(voiced["bridge"]), lm_sizes=SMALL_LM, simulate_text=1.0, simulate_context=True)
    with pytest.raises(SlufitError, match="speech_readings and lm_sizes are options of the tiny bridge only"):
        load_model("Qwen/Qwen2-Audio-7B-Instruct", simulate_context=True)  # refused before any download
    with pytest.raises(SlufitError, match="options of the tiny bridge only"):
        load_model("Qwen/Qwen2-Audio-7B-Instruct", simulate_words=0.5)


def test_simulated_text_items_take_the_bridge_word_readings(voiced, tmp_path):
    """simulate_words: words with readings (readings.safetensors beside the confusions) come in as them."""
    from safetensors.torch import save_file

    from slufit.models.bridge.readings import READINGS_FILE, build

    with pytest.raises(SlufitError, match="simulate_words needs the bridge's word readings"):
        load_model(str(voiced["bridge"]), lm_sizes=SMALL_LM, simulate_text=1.0, simulate_words=0.5)
    folder = make_bridge(tmp_path / "bridge")
    units = "abcdefghijklmnopqrstuvwxyz' "
    words = sorted({w for e in voiced["examples"] for w in normalize(e.text, units[:-1]).split()})
    heard_as_qqq = torch.nn.functional.one_hot(torch.full((3,), units.index("q")), len(units)).float()
    save_file(build([heard_as_qqq] * len(words), words, units), str(folder / READINGS_FILE))
    torch.manual_seed(0)
    model = load_model(str(folder), lm_sizes=SMALL_LM, simulate_text=1.0, simulate_words=1.0)
    batch = model.collate(voiced["text"])
    rows = batch["dists"][batch["dist_mask"]]
    n_words = sum(len(normalize(e.text, units[:-1]).split()) for e in voiced["examples"])
    assert int((rows == heard_as_qqq[0]).all(-1).sum()) == 3 * n_words  # every word as its reading
    model.save(tmp_path / "saved")  # a saved model keeps its readings
    again = load_model(str(tmp_path / "saved"), simulate_text=1.0, simulate_words=1.0)
    assert again.readings is not None and len(again.readings) == len(words)


def test_a_stage_speech_items_lend_their_readings(voiced, tmp_path):
    """speech_readings: as a stage begins, its speech items' words add their segments to the readings."""
    from safetensors.torch import save_file

    from slufit.models.bridge.readings import READINGS_FILE, build

    with pytest.raises(SlufitError, match="speech_readings lends readings to simulated words"):
        load_model(str(voiced["bridge"]), lm_sizes=SMALL_LM, simulate_text=1.0, speech_readings=True)
    folder = make_bridge(tmp_path / "bridge")
    units = "abcdefghijklmnopqrstuvwxyz' "
    own = torch.nn.functional.one_hot(torch.full((2,), units.index("q")), len(units)).float()
    save_file(build([own], ["zebra"], units), str(folder / READINGS_FILE))  # the bridge's own: one word
    model = load_model(str(folder), lm_sizes=SMALL_LM, simulate_text=1.0, simulate_words=0.5, speech_readings=True)
    assert set(model.readings.index) == {"zebra"}
    model.begin_stage(voiced["text"] + voiced["speech"][:2])
    heard = {w for e in voiced["examples"][:2] for w in normalize(e.text, units[:-1]).split()}
    assert set(model.readings.index) == heard | {"zebra"}
    first = voiced["examples"][0]
    word = normalize(first.text, units[:-1]).split()[0]
    assert model.readings.index[word][1] == sum(normalize(e.text, units[:-1]).split().count(word)
                                                for e in voiced["examples"][:2])
    model.begin_stage(voiced["text"])  # a stage without speech: the bridge's own readings only
    assert set(model.readings.index) == {"zebra"}
    model.begin_stage(voiced["speech"])
    model.save(tmp_path / "saved")  # the stage's speech readings are not saved with the model
    assert set(load_model(str(tmp_path / "saved")).readings.index) == {"zebra"}


# ---------------------------------------------------------------- pretraining and a 2-step run


@pytest.mark.slow
def test_pretrain_writes_a_cached_bridge_that_loads(tmp_path):
    from slufit.corpus import build_corpus
    from slufit.models.bridge.pretrain import BridgeConfig, pretrain

    build_corpus(tmp_path / "corpus", locales=["en-US"], n_train=4, n_dev=4, n_test=4, n_pretrain=12, seed=0)
    config = BridgeConfig(corpus=str(tmp_path / "corpus"), pool_utterances=8, word_sequences=8, heldout=6,
                          lexicon_words=5, eval_utterances=4, epochs=1, batch_size=8, head={"d": 32, "heads": 2},
                          cache_dir=str(tmp_path / "cache"))
    lines: list[str] = []
    folder = pretrain(config, log=lines.append)
    for name in ("bridge.safetensors", "confusions.safetensors", "readings.safetensors", "bridge.json",
                 "metrics.json", "summary.json", "predictions.jsonl"):
        assert (folder / name).is_file()
    rates = json.loads((folder / "summary.json").read_text())["rates"]["en-US"]
    assert 0 <= rates["cer"] and 0 <= rates["wer"]
    # Unlabelled clips (8 pool + 8 word sequences + 6 held out + the sweep of 5 words) by the unlabelled pool,
    # SLU dev by test speakers.
    from slufit.models.bridge.pretrain import frequent_words
    from slufit.models.bridge.readings import lexicon_sweep

    sweep = lexicon_sweep(frequent_words("en-US", 5), 1, seed=0)
    clips = [p.stem for p in (tmp_path / "cache" / "speech" / "audio" / "en-US").iterdir()]
    assert sum("-unlabelled" in c for c in clips) == 22 + len(sweep) and sum("-test" in c for c in clips) == 4
    assert sum(c.startswith("lexicon-") for c in clips) == len(sweep)
    assert len(clips) == 26 + len(sweep)
    assert any("CER" in line and "WER" in line for line in lines)
    # Cached: the same config returns the same folder at once.
    again: list[str] = []
    assert pretrain(config, log=again.append) == folder and "cached bridge" in again[0]
    model = load_model(str(folder), lm_sizes=SMALL_LM, simulate_text=1.0, simulate_words=0.5)
    assert model.head_units == "abcdefghijklmnopqrstuvwxyz' "
    # Readings of the sweep's words and of the held-out clips' words.
    assert set(frequent_words("en-US", 5)) <= set(model.readings.index)


def test_two_step_train_then_eval(voiced, tmp_path, capsys):
    """`slufit train` on the embedded corpus from the bridge folder, then `slufit eval` on its saved model."""
    from slufit.cli import main
    from slufit.data.example import write_examples

    data = voiced["root"] / "speech" / "test.jsonl"
    write_examples(data, voiced["examples"])
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({
        "model": {"name": str(voiced["bridge"]), "options": {"lm_sizes": SMALL_LM}},
        "data": {"train": [str(data)], "test": [str(data)]},
        "scheme": {"name": "mix", "epochs": 1},
        "train": {"batch_size": 2, "lr": 1e-3},
        "eval": {"beams": 1, "max_new_tokens": 8, "modalities": ["speech", "text"]},
        "run_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(config)]) == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["done"] and summary["steps"] == 4  # 4 text + 4 speech items, batch 2
    assert (run / "model" / "lm" / "model.safetensors").is_file()
    assert main(["eval", "--run", str(run), "--data", str(data), "--modality", "speech", "--beams", "1"]) == 0
    metrics = json.loads((run / "eval" / "test-speech" / "metrics.json").read_text())
    assert metrics["items"] == 4 and metrics["parse_failures"] == 0


def test_the_bridge_speaker_pool_is_checked():
    from slufit.models.bridge.pretrain import BridgeConfig

    assert BridgeConfig().speakers == "unlabelled" and BridgeConfig(speakers="train").speakers == "train"
    with pytest.raises(SlufitError,
                       match=r"speakers must be one of unlabelled, train, unlabelled\+festival, got 'test'"):
        BridgeConfig(speakers="test")  # test speakers never voice what the bridge trains on


def test_default_config_file_matches_the_dataclass():
    """`load_model("tiny")` trains the bridge of configs/tiny/pretrain.yaml; it must be BridgeConfig()'s run."""
    from slufit.models.bridge.pretrain import DEFAULT_CONFIG, BridgeConfig, load_config

    assert load_config(DEFAULT_CONFIG) == BridgeConfig()
    with pytest.raises(SlufitError, match="unknown key"):
        load_config(None, ["epoch=3"])


SIM = 0.5  # simulated text items draw from torch's RNG: the checkpoint must restore it too (so do filler swaps)


def test_curriculum_from_the_text_only_checkpoint_equals_training_it_whole(voiced, tmp_path):
    """A grid's curriculum run reuses its text-only run as its text stage (slufit.train.loop.warm_start_mismatch):
    the result is bit for bit the curriculum trained from scratch; a different first stage is refused."""
    from slufit.data.example import write_examples
    from slufit.train.config import config_from_dict, resolve_paths
    from slufit.train.loop import train

    data = voiced["root"] / "speech" / "curriculum.jsonl"  # beside the recordings its paths are relative to
    write_examples(data, voiced["examples"])

    def config(name, scheme, swap=0.5, **train_extra):
        return resolve_paths(config_from_dict({
            # Word readings from the stage's speech items: none in the text stage, so it is still text-only's.
            "model": {"name": str(voiced["bridge"]), "options": {"lm_sizes": SMALL_LM, "simulate_text": SIM,
                                                                 "simulate_words": 0.5, "speech_readings": True}},
            "data": {"train": [str(data)], "speech_fraction": 0.5, "filler_swap": swap},
            "scheme": scheme, "train": {"batch_size": 2, "lr": 1e-3, **train_extra},
            "eval": {"modalities": ["speech"], "beams": 1, "max_new_tokens": 4}, "run_dir": str(tmp_path / name)}))

    curriculum = {"name": "curriculum", "text_epochs": 2, "mix_epochs": 1, "mix_lr": 5e-4}
    train(config("text", {"name": "text_only", "epochs": 2}))
    whole = train(config("whole", curriculum))
    reused = train(config("reused", curriculum), warm_start=tmp_path / "text")
    assert whole["warm_start"] is None and reused["warm_start"] == str(tmp_path / "text")
    a = load_model(str(tmp_path / "whole" / "model")).module.state_dict()
    b = load_model(str(tmp_path / "reused" / "model")).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Another text stage (3 epochs): the checkpoint is not reused, the stage is trained here.
    other = train(config("other", {**curriculum, "text_epochs": 3}), warm_start=tmp_path / "text")
    assert other["warm_start"] is None
    # Another filler-swap share: the text stage saw other items, so it is not reused either.
    unswapped = train(config("unswapped", curriculum, swap=0.0), warm_start=tmp_path / "text")
    assert unswapped["warm_start"] is None


def test_slurp_labels_are_in_the_tiny_label_space(shared_slurp, tmp_path):
    """configs/grids/slurp.yaml on the tiny default: every real SLURP devel and test example has a compact target."""
    from slufit.cli import main

    vocab = Vocabulary.for_locales(["en-US"])
    for split in ("devel", "test"):
        out = tmp_path / f"{split}.jsonl"
        assert main(["data", "import", "slurp", str(shared_slurp / f"{split}.jsonl"), "--out", str(out)]) == 0
        examples = read_examples(out)
        assert len(examples) > 2000
        for e in examples:
            assert vocab.decode_target(vocab.target_ids(e))["scenario"] == e.scenario


def test_two_fresh_pretrains_give_the_same_bridge_and_augmentation_adds_copies(tmp_path):
    """Reproducible bridges: voiced and trained twice from nothing (fresh caches), the same head, byte for byte;
    with augmentation, each training clip also gets a speed-perturbed, noisy copy."""
    from slufit.corpus import build_corpus
    from slufit.models.bridge.pretrain import BridgeConfig, pretrain

    build_corpus(tmp_path / "corpus", locales=["en-US"], n_train=4, n_dev=4, n_test=4, n_pretrain=12, seed=0)
    folders, lines = [], []
    for name in ("one", "two"):
        config = BridgeConfig(corpus=str(tmp_path / "corpus"), pool_utterances=8, word_sequences=8, heldout=6,
                              lexicon_words=0, eval_utterances=4, epochs=1, batch_size=8, head={"d": 32, "heads": 2},
                              augment_copies=1, channel_mask=8, threads=1, cache_dir=str(tmp_path / name))
        folders.append(pretrain(config, log=lines.append))
    assert folders[0].name == folders[1].name  # the same config, data and code: the same run key
    assert (folders[0] / "bridge.safetensors").read_bytes() == (folders[1] / "bridge.safetensors").read_bytes()
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders]
    assert summaries[0]["rates"] == summaries[1]["rates"]
    assert any("1 augmented copy of 16 training clips" in line for line in lines), lines


def test_perturbed_copies_change_speed_and_are_reproducible():
    import numpy as np

    from slufit.models.bridge.pretrain import BridgeConfig, perturbed

    wave = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.5
    a, b = perturbed(wave, 7, [0.8, 0.8], [20.0, 20.0]), perturbed(wave, 7, [0.8, 0.8], [20.0, 20.0])
    assert np.array_equal(a, b) and abs(len(a) - 16000 / 0.8) < 50
    noise = a[: len(a)] - perturbed(wave, 7, [0.8, 0.8], [200.0, 200.0])
    assert 0.02 < float(np.std(noise)) < 0.1  # 20 dB under a sine of power 0.125: std ~0.035
    with pytest.raises(SlufitError, match="speed_range"):
        BridgeConfig(speed_range=[1.2, 0.9])
