"""The LALM adapter on tiny random-weight Qwen2-Audio and Qwen2.5-Omni thinker models (offline, CPU)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import GenerationConfig

from slufit.data.example import Entity, Example
from slufit.models.base import SLUItem, SLUModel
from slufit.models.lalm.adapter import IGNORE, LALMAdapter
from slufit.models.lalm.families import family_for
from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_qwen_omni_thinker, tiny_tokenizer
from slufit.target import format_target

ROWS = [
    ("wake me up at seven am", "alarm", "set", [("time", "seven am")]),
    ("play some jazz", "play", "music", [("music_genre", "jazz")]),
    ("what is the weather in paris", "weather", "query", [("place_name", "paris")]),
    ("remind me to call mona", "calendar", "set", [("person", "mona")]),
    ("turn off the lights", "iot", "hue_lightoff", []),
    ("how much is a pound in euros", "qa", "currency", [("currency_name", "euros")]),
    ("tell me a joke", "general", "joke", []),
    ("what time is it", "datetime", "query", []),
]
EXAMPLES = [Example(id=f"e{i}", locale="en-US", text=t, scenario=s, action=a, intent=f"{s}_{a}",
                    entities=tuple(Entity(*e) for e in ents)) for i, (t, s, a, ents) in enumerate(ROWS)]
FAMILIES = ["qwen2-audio", "omni"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Two threads on a busy 2-core machine are many times slower than one for models this small.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer([format_target(e) for e in EXAMPLES] + [e.text for e in EXAMPLES])


def make(family: str, tokenizer, **options) -> LALMAdapter:
    if family == "omni":
        model, fe, tok = tiny_qwen_omni_thinker(tokenizer)
        return LALMAdapter(model, tok, family=family_for(model), feature_extractor=fe, **options)
    model, processor = tiny_qwen2_audio(tokenizer)
    return LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, **options)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Two clips of different lengths (a tone and noise), 16 kHz."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate([1.0, 2.3]):
        n = int(16000 * seconds)
        wave = 0.1 * np.sin(np.arange(n) * 0.05 * (i + 1)) + 0.01 * rng.standard_normal(n)
        paths.append(folder / f"clip{i}.wav")
        sf.write(paths[-1], wave.astype(np.float32), 16000)
    return paths


def speech_items(paths):
    return [SLUItem(EXAMPLES[i], "speech", audio_path=p) for i, p in enumerate(paths)]


def text_items(n=2):
    return [SLUItem(e, "text") for e in EXAMPLES[:n]]


class CallCounter:
    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_cover_exactly_the_target_and_closing_token(family, tokenizer, audio):
    adapter = make(family, tokenizer)
    assert isinstance(adapter, SLUModel)
    for items in (text_items(), speech_items(audio)):
        batch = adapter.collate(items)
        for row, item in enumerate(items):
            expected = tokenizer(format_target(item.example) + "<|im_end|>", add_special_tokens=False)["input_ids"]
            labels = batch["labels"][row]
            n = len(expected)
            assert labels[-n:].tolist() == expected
            assert (labels[:-n] == IGNORE).all()
            assert tokenizer.decode(labels[-n:]) == format_target(item.example) + "<|im_end|>"
        # Left padding: pads only at the start, masked out.
        mask = batch["attention_mask"]
        assert (mask[:, -1] == 1).all() and (mask.sum(1) < mask.shape[1]).any()
        pads = batch["input_ids"][mask == 0]
        assert (pads == tokenizer.pad_token_id).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_speech_prompt_has_one_audio_token_per_encoder_frame(family, tokenizer, audio):
    adapter = make(family, tokenizer)
    batch = adapter.collate(speech_items(audio))
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    for row, seconds in enumerate([1.0, 2.3]):
        frames = int(seconds * 16000) // 160  # 10 ms mel hop
        expected = ((frames - 1) // 2 + 1 - 2) // 2 + 1  # conv stride 2, then pooling by 2
        assert int((batch["input_ids"][row] == audio_id).sum()) == expected
    assert batch["feature_attention_mask"].sum(1).tolist() == [100, 230]
    text = tokenizer.decode(batch["input_ids"][0])
    assert "<|audio_bos|><|AUDIO|>" in text and "Transcript:" not in text and EXAMPLES[0].text not in text


@pytest.mark.parametrize("family", FAMILIES)
def test_text_batches_never_run_the_audio_encoder(family, tokenizer, audio):
    adapter = make(family, tokenizer, use_encoder_cache=False)
    counter = CallCounter(adapter.module.hf.model.audio_tower)
    batch = adapter.collate(text_items())
    assert "input_features" not in batch
    assert EXAMPLES[0].text in tokenizer.decode(batch["input_ids"][0])
    adapter.loss(batch).backward()
    adapter.generate(text_items(), max_new_tokens=3)
    assert counter.calls == 0
    adapter.loss(adapter.collate(speech_items(audio)))
    assert counter.calls == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_encoder_gives_the_same_loss_and_gradients(family, tokenizer, audio):
    adapter = make(family, tokenizer)
    adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
    batch = adapter.collate(speech_items(audio))
    counter = CallCounter(adapter.module.hf.model.audio_tower)
    projector = [p for n, p in adapter.module.hf.named_parameters() if adapter.part_of(n) == "projector"]

    def loss_and_grad():
        adapter.module.zero_grad()
        loss = adapter.loss(batch)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in projector]

    cache = adapter.module.cache
    adapter.module.cache = None  # the transformers forward, audio merged by transformers
    reference, reference_grads = loss_and_grad()
    adapter.module.cache = cache
    first, _ = loss_and_grad()  # computes and stores
    calls = counter.calls
    second, grads = loss_and_grad()  # from the cache
    assert counter.calls == calls, "the encoder ran again for cached recordings"
    assert (cache.misses, cache.hits, len(cache)) == (2, 2, 2)
    assert first == pytest.approx(reference, abs=1e-5) and second == pytest.approx(reference, abs=1e-5)
    for g, r in zip(grads, reference_grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)


def test_encoder_cache_on_disk_is_reused_and_keyed_by_encoder(tokenizer, audio, tmp_path):
    adapter = make("qwen2-audio", tokenizer, cache_dir=str(tmp_path))
    adapter.set_trainable(False, True, True)
    batch = adapter.collate(speech_items(audio))
    loss = adapter.loss(batch).item()
    files = list(tmp_path.rglob("*.safetensors"))
    assert len(files) == 2
    again = make("qwen2-audio", tokenizer, cache_dir=str(tmp_path))
    again.set_trainable(False, True, True)
    assert again.loss(batch).item() == pytest.approx(loss, abs=1e-6)
    assert again.module.cache.hits == 2 and again.module.cache.misses == 0
    with torch.no_grad():  # a different encoder must not read those entries
        again.module.hf.model.audio_tower.layers[0].fc1.weight.add_(0.1)
    again.set_trainable(False, True, True)
    again.loss(batch)
    assert again.module.cache.misses == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_set_trainable_freezes_exactly_the_named_parts(family, tokenizer):
    adapter = make(family, tokenizer)
    named = list(adapter.module.hf.named_parameters())
    parts = {adapter.part_of(n) for n, _ in named}
    assert {"audio_encoder", "projector", "language_model"} <= parts
    for flags in [(False, False, True), (False, True, False), (True, False, False), (False, True, True)]:
        adapter.set_trainable(*flags)
        wanted = dict(zip(("audio_encoder", "projector", "language_model"), flags))
        for name, param in named:
            assert param.requires_grad == wanted.get(adapter.part_of(name), False), (flags, name)
    # The cache is on exactly when the encoder is frozen.
    assert adapter.module.cache is not None
    adapter.set_trainable(True, True, True)
    assert adapter.module.cache is None


def test_lora_trains_only_adapters_of_the_language_model(tokenizer, audio):
    adapter = make("qwen2-audio", tokenizer, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    named = dict(adapter.module.hf.named_parameters())
    lora = {n for n in named if "lora_" in n}
    assert lora and all(adapter.part_of(n) == "language_model" for n in lora)
    assert {n for n, p in named.items() if p.requires_grad} == lora
    before = {n: p.detach().clone() for n, p in named.items()}
    optimizer = torch.optim.AdamW([p for p in adapter.module.parameters() if p.requires_grad], lr=1e-2)
    for items in (text_items(), speech_items(audio)):
        adapter.loss(adapter.collate(items)).backward()
        optimizer.step()
        optimizer.zero_grad()
    changed = {n for n, p in named.items() if not torch.equal(p, before[n])}
    assert changed == {n for n in lora if "lora_B" in n or "lora_A" in n}


def test_mixed_modalities_in_one_batch_are_refused(tokenizer, audio):
    adapter = make("qwen2-audio", tokenizer)
    with pytest.raises(ValueError, match="one modality"):
        adapter.collate(text_items(1) + speech_items(audio[:1]))


def test_non_16khz_audio_is_resampled_and_long_audio_warns(tokenizer, tmp_path):
    adapter = make("qwen2-audio", tokenizer)
    t = np.arange(8000 * 2) / 8000
    sf.write(tmp_path / "8k.wav", (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    batch = adapter.collate([SLUItem(EXAMPLES[0], "speech", audio_path=tmp_path / "8k.wav")])
    assert batch["feature_attention_mask"].sum().item() == 200  # 2 s at 16 kHz, not 1 s
    t = np.arange(16000 * 7) / 16000  # the window is 5 s
    sf.write(tmp_path / "long.wav", (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    with pytest.warns(UserWarning, match="longer than the model's 5 s audio window"):
        adapter.collate([SLUItem(EXAMPLES[0], "speech", audio_path=tmp_path / "long.wav")])


def overfit(adapter: LALMAdapter, items, steps: int = 120, lr: float = 3e-3) -> float:
    optimizer = torch.optim.AdamW([p for p in adapter.module.parameters() if p.requires_grad], lr=lr,
                                  betas=(0.9, 0.95), weight_decay=0.0)
    batch = adapter.collate(items)
    adapter.module.train()
    for _ in range(steps):
        loss = adapter.loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(adapter.module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    return loss.item()


# What a hub checkpoint's generation_config.json may hold: Qwen2.5-7B-Instruct's sampling and repetition settings, and
# the other fields transformers would apply to every generate call that leaves them unset.
HUB_GENERATION = {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05,
                  "num_beams": 2, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "min_new_tokens": 2}


def test_overfit_generates_exact_targets_and_survives_save_and_load(tokenizer, tmp_path):
    from slufit.models.registry import load_model

    adapter = make("qwen2-audio", tokenizer)
    items = [SLUItem(e, "text") for e in EXAMPLES]
    assert overfit(adapter, items) < 0.05
    targets = [format_target(e) for e in EXAMPLES]
    greedy = adapter.generate(items, max_new_tokens=60)
    assert greedy == targets
    assert adapter.generate(items, num_beams=3, max_new_tokens=60) == targets
    # A hub-style generation_config (Qwen2.5's settings, plus the other fields that change an output) must not
    # reach evaluation: the same exact targets, greedy and beam; the same settings through transformers' own
    # generate do change them (so the reset is what keeps them).
    hf = adapter.module.hf
    hf.generation_config = GenerationConfig(**HUB_GENERATION)
    assert adapter.generate(items, max_new_tokens=60) == targets
    assert adapter.generate(items, num_beams=3, max_new_tokens=60) == targets
    assert hf.generation_config.repetition_penalty == 1.05  # the model keeps its own config
    batch = adapter.collate(items, with_targets=False)
    torch.manual_seed(0)
    raw = hf.generate(**{k: v for k, v in batch.items() if k != "audio_keys"}, max_new_tokens=60,
                      eos_token_id=adapter._stop_ids(), pad_token_id=tokenizer.pad_token_id)
    raw = tokenizer.batch_decode(raw[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert sum(r != t for r, t in zip(raw, targets)) >= 4
    adapter.save(tmp_path / "model")
    assert (tmp_path / "model" / "model" / "model.safetensors").is_file()
    assert "repetition_penalty" in (tmp_path / "model" / "model" / "generation_config.json").read_text()
    loaded = load_model(tmp_path / "model")
    assert loaded.module.hf.generation_config.no_repeat_ngram_size == 3  # read back from the saved folder
    assert loaded.generate(items, max_new_tokens=60) == greedy
    batch = adapter.collate(items)
    assert loaded.loss(batch).item() == pytest.approx(adapter.loss(batch).item(), abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_save_and_load_gives_the_same_outputs(family, tokenizer, audio, tmp_path):
    from slufit.models.registry import load_model

    adapter = make(family, tokenizer, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
    overfit(adapter, text_items(4), steps=5, lr=1e-2)
    overfit(adapter, speech_items(audio), steps=2, lr=1e-2)  # moves the projector too
    adapter.save(tmp_path / "run")
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "non_lora.safetensors").is_file()
    loaded = load_model(tmp_path / "run")
    assert loaded.lora is not None
    for items in (text_items(4), speech_items(audio)):
        # Each adapter collates its own batch: a batch may rely on the collating adapter's encoder cache.
        assert loaded.loss(loaded.collate(items)).item() == pytest.approx(adapter.loss(adapter.collate(items)).item(),
                                                                          abs=1e-5)
        assert loaded.generate(items, max_new_tokens=8) == adapter.generate(items, max_new_tokens=8)


def test_batched_generation_matches_one_by_one(tokenizer, audio):
    """Left padding and masks: a short item generates the same alone as beside a long one."""
    adapter = make("qwen2-audio", tokenizer)
    items = speech_items(audio)
    together = adapter.generate(items, max_new_tokens=10)
    alone = [adapter.generate([item], max_new_tokens=10)[0] for item in items]
    assert together == alone
    together = adapter.generate(text_items(3), num_beams=2, max_new_tokens=10)
    assert together == [adapter.generate([i], num_beams=2, max_new_tokens=10)[0] for i in text_items(3)]


def test_registry_loads_a_transformers_folder_and_rejects_unknown_names(tokenizer, tmp_path):
    from slufit.errors import SlufitError
    from slufit.models.registry import MODELS, load_model

    assert MODELS["qwen2-audio-7b-instruct"] == "Qwen/Qwen2-Audio-7B-Instruct"
    assert MODELS["qwen2.5-omni-7b"] == "Qwen/Qwen2.5-Omni-7B"
    model, processor = tiny_qwen2_audio(tokenizer)
    model.save_pretrained(tmp_path / "hf")
    processor.save_pretrained(tmp_path / "hf")
    adapter = load_model(tmp_path / "hf", lora={"r": 2})
    assert adapter.base_name == str((tmp_path / "hf").resolve())
    assert len(adapter.generate(text_items(1), max_new_tokens=2)) == 1
    with pytest.raises(SlufitError, match="cannot load model"):
        load_model(str(tmp_path / "missing" / "model"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SlufitError, match="unknown LoRA option"):
            load_model(tmp_path / "hf", lora={"rank": 2})


def test_rehearsal_batches_target_the_transcript(tokenizer, audio):
    adapter = make("qwen2-audio", tokenizer)
    items = speech_items(audio)
    batch = adapter.collate_rehearsal(items)
    for row, item in enumerate(items):
        labels = batch["labels"][row]
        assert tokenizer.decode(labels[labels != IGNORE]) == item.example.text + "<|im_end|>"
    assert "Write down what the user said." in tokenizer.decode(batch["input_ids"][0])
    assert adapter.loss(batch).item() > 0


def test_transcript_first_rehearsal_targets_the_transcript_opening_in_the_slu_prompt(tokenizer, audio):
    from slufit.target import instruction, transcript_prefix

    adapter = make("qwen2-audio", tokenizer, transcript_first=True)
    items = speech_items(audio)
    batch = adapter.collate_rehearsal(items)
    for row, item in enumerate(items):
        labels = batch["labels"][row]
        target = tokenizer.decode(labels[labels != IGNORE])
        assert target == transcript_prefix(item.example.text)  # no labels, no end token
        assert format_target(item.example, transcript_first=True).startswith(target)
    assert instruction(True) in tokenizer.decode(batch["input_ids"][0])
    assert adapter.loss(batch).item() > 0


def test_blind_text_items_leave_the_transcript_out_of_training_prompts_only(tokenizer):
    items = [SLUItem(e, "text") for e in EXAMPLES]
    adapter = make("qwen2-audio", tokenizer, transcript_first=True, blind_text=1.0)
    train = tokenizer.batch_decode(adapter.collate(items)["input_ids"])
    assert not any("Transcript:" in row for row in train)
    generation = tokenizer.batch_decode(adapter.collate(items, with_targets=False)["input_ids"])
    assert all("Transcript:" in row for row in generation)
    half = make("qwen2-audio", tokenizer, transcript_first=True, blind_text=0.5)
    blind = [half._blind(item) for item in items]
    assert blind == [half._blind(item) for item in items]  # a fixed subset
    plain = make("qwen2-audio", tokenizer, blind_text=1.0)  # only with the transcript-first target
    assert all("Transcript:" in row for row in tokenizer.batch_decode(plain.collate(items)["input_ids"]))


def test_gradient_checkpointing_and_dtype_options_keep_the_loss(tokenizer, tmp_path):
    from slufit.models.registry import load_model

    model, processor = tiny_qwen2_audio(tokenizer)
    model.save_pretrained(tmp_path / "hf")
    processor.save_pretrained(tmp_path / "hf")
    plain = load_model(tmp_path / "hf")
    checkpointed = load_model(tmp_path / "hf", gradient_checkpointing=True, dtype="float32")
    assert checkpointed.module.hf.is_gradient_checkpointing and not plain.module.hf.is_gradient_checkpointing
    assert {p.dtype for p in plain.module.parameters()} == {torch.float32}  # CPU default
    plain.module.train()
    checkpointed.module.train()
    batch = plain.collate(text_items())
    a, b = plain.loss(batch), checkpointed.loss(batch)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), abs=1e-6)
    name = "model.language_model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(dict(plain.module.hf.named_parameters())[name].grad,
                               dict(checkpointed.module.hf.named_parameters())[name].grad)


def test_always_frozen_parts_stay_frozen_and_survive_save(tokenizer, tmp_path):
    from slufit.models.registry import load_model

    adapter = make("qwen2-audio", tokenizer, always_frozen=("audio_encoder",))
    adapter.set_trainable(audio_encoder=True, projector=True, language_model=True)
    named = list(adapter.module.hf.named_parameters())
    assert not any(p.requires_grad for n, p in named if adapter.part_of(n) == "audio_encoder")
    assert all(p.requires_grad for n, p in named if adapter.part_of(n) == "projector")
    assert adapter.module.cache is not None  # frozen, so cached
    adapter.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.always_frozen == ("audio_encoder",)


def test_registry_loads_an_omni_thinker_folder(tokenizer, tmp_path, audio):
    from slufit.models.registry import load_model

    model, fe, tok = tiny_qwen_omni_thinker(tokenizer)
    for part in (model, fe, tok):
        part.save_pretrained(tmp_path / "omni")
    adapter = load_model(tmp_path / "omni")
    assert adapter.family.name == "qwen2.5-omni-thinker"
    batch = adapter.collate(speech_items(audio))
    reference = LALMAdapter(model, tok, family=family_for(model), feature_extractor=fe)
    assert adapter.loss(batch).item() == pytest.approx(reference.loss(batch).item(), abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_recordings_skip_audio_reading_in_collate(family, tokenizer, audio, monkeypatch):
    from slufit.models.lalm import adapter as lalm_adapter

    adapter = make(family, tokenizer)
    adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
    items = speech_items(audio)
    full = adapter.collate(items)
    reference = adapter.loss(full).item()  # fills the cache
    reads = []
    original = lalm_adapter.load_wave
    monkeypatch.setattr(lalm_adapter, "load_wave", lambda path: reads.append(path) or original(path))
    light = adapter.collate(items)
    assert reads == [] and "input_features" not in light
    assert torch.equal(light["input_ids"], full["input_ids"]) and torch.equal(light["labels"], full["labels"])
    assert adapter.loss(light).item() == pytest.approx(reference, abs=1e-6)
    assert len(adapter.generate(items, max_new_tokens=2)) == 2  # generation still reads the audio
    assert len(reads) == 2
    adapter.set_trainable(audio_encoder=True, projector=True, language_model=True)  # cache off
    with pytest.raises(RuntimeError, match="collate the batch again"):
        adapter.loss(light)  # no features and no cache: refused, not silently wrong
