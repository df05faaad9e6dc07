"""The adapter contract on tiny random-weight models of each newer LALM family, built offline with their real
transformers classes (and their real processor classes where one can be built here): exact label masks,
audio placeholders, text batches without the encoder, cache equality, freezing by name, LoRA and full
save/load round trips, batched generation, long-audio errors, gradient checkpointing, and a 2-step
`slufit train` + `slufit eval` on the test corpus. Parametrised by family name, so
`pytest --collect-only -q | grep -i voxtral` lists a family's tests."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from slufit.data.example import Entity, Example
from slufit.errors import SlufitError
from slufit.models.base import SLUItem, SLUModel
from slufit.models.lalm.adapter import IGNORE, LALMAdapter
from slufit.models.lalm.families import family_for
from slufit.target import format_target

from test_train_support import write_config

ROWS = [
    ("wake me up at seven am", "alarm", "set", [("time", "seven am")]),
    ("play some jazz", "play", "music", [("music_genre", "jazz")]),
    ("what is the weather in paris", "weather", "query", [("place_name", "paris")]),
    ("turn off the lights", "iot", "hue_lightoff", []),
]
EXAMPLES = [Example(id=f"e{i}", locale="en-US", text=t, scenario=s, action=a, intent=f"{s}_{a}",
                    entities=tuple(Entity(*e) for e in ents)) for i, (t, s, a, ents) in enumerate(ROWS)]
CLIP_SECONDS = [1.0, 2.3]
REPO = Path(__file__).resolve().parents[1]


def _qwen3_frames(mel: torch.Tensor) -> torch.Tensor:
    """Qwen3-Omni: 13 frames per full 100-frame mel chunk, then the 3-conv stride-8 rule for the rest."""
    rest = (mel % 100 - 1) // 2 + 1
    return ((rest - 1) // 2 + 1 - 1) // 2 + 1 + (mel // 100) * 13


# family name -> (module under slufit.models.lalm, audio placeholders for a clip of n samples).
FAMILIES = {
    "audio-flamingo-3": ("audio_flamingo3", lambda n: ((n // 160 - 1) // 2 + 1 - 2) // 2 + 1),
    "qwen3-omni-thinker": ("qwen3_omni", lambda n: int(_qwen3_frames(torch.tensor(n // 160)))),
    "voxtral": ("voxtral", lambda n: 50),  # whole windows, no mask: 4 s x 12.5 Hz whatever the length
    "granite-speech": ("granite_speech", lambda n: -(-((n // 160 + 1) // 2) // 15) * 3),  # 3 per 15 frames
    "phi-4-multimodal": ("phi4_multimodal", lambda n: -(-((n - 400) // 160 + 1) // 8)),  # 8x time reduction
}
NAMES = list(FAMILIES)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def texts():
    return [format_target(e) for e in EXAMPLES] + [e.text for e in EXAMPLES]




def make(name: str, **options) -> LALMAdapter:
    """A fresh adapter over a tiny model of the family (the same random weights every time)."""
    module = importlib.import_module(f"slufit.models.lalm.{FAMILIES[name][0]}")
    model, tokenizer, processor, fe = module.tiny(texts())
    return LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, feature_extractor=fe, **options)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate(CLIP_SECONDS):
        n = int(16000 * seconds)
        wave = 0.1 * np.sin(np.arange(n) * 0.05 * (i + 1)) + 0.01 * rng.standard_normal(n)
        paths.append(folder / f"clip{i}.wav")
        sf.write(paths[-1], wave.astype(np.float32), 16000)
    return paths


def speech_items(paths):
    # Examples whose targets differ in length, so that every batch is padded.
    return [SLUItem(EXAMPLES[3 * i], "speech", audio_path=p) for i, p in enumerate(paths)]


def text_items(n=2):
    return [SLUItem(e, "text") for e in EXAMPLES[:n]]


class CallCounter:
    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))


@pytest.mark.parametrize("name", NAMES)
def test_labels_cover_exactly_the_target_and_its_end_token(name, audio):
    adapter = make(name)
    assert isinstance(adapter, SLUModel)
    tok, end = adapter.tokenizer, adapter.family.end_token
    for items in (text_items(), speech_items(audio)):
        batch = adapter.collate(items)
        for row, item in enumerate(items):
            expected = tok(format_target(item.example) + end, add_special_tokens=False)["input_ids"]
            labels = batch["labels"][row]
            n = len(expected)
            assert labels[-n:].tolist() == expected
            assert (labels[:-n] == IGNORE).all()
            assert tok.decode(labels[-n:]) == format_target(item.example) + end
        mask = batch["attention_mask"]
        assert (mask[:, -1] == 1).all() and (mask.sum(1) < mask.shape[1]).any()  # padded, on the left only
        assert (mask.diff(dim=1) >= 0).all()
        assert (batch["input_ids"][mask == 0] == tok.pad_token_id).all()


@pytest.mark.parametrize("name", NAMES)
def test_speech_prompt_has_the_processors_audio_placeholders(name, audio):
    adapter = make(name)
    batch = adapter.collate(speech_items(audio))
    audio_id = adapter.tokenizer.convert_tokens_to_ids(adapter.family.audio_token)
    for row, seconds in enumerate(CLIP_SECONDS):
        assert int((batch["input_ids"][row] == audio_id).sum()) == FAMILIES[name][1](int(seconds * 16000))
    speech = adapter.tokenizer.decode(batch["input_ids"][0])
    assert "Transcript:" not in speech and EXAMPLES[0].text not in speech
    text = adapter.tokenizer.decode(adapter.collate(text_items())["input_ids"][0])
    assert f"Transcript: {EXAMPLES[0].text}" in text and adapter.family.audio_token not in text


@pytest.mark.parametrize("name", NAMES)
def test_text_batches_never_run_the_audio_encoder(name, audio):
    adapter = make(name, use_encoder_cache=False)
    counter = CallCounter(adapter.family.encoder_of(adapter.module.hf))
    batch = adapter.collate(text_items())
    assert not set(adapter.family.feature_keys) & set(batch)
    adapter.loss(batch).backward()
    adapter.generate(text_items(), max_new_tokens=3)
    assert counter.calls == 0
    loss = adapter.loss(adapter.collate(speech_items(audio)))
    assert counter.calls >= 1 and torch.isfinite(loss)


@pytest.mark.parametrize("name", NAMES)
def test_cached_encoder_gives_the_same_loss_and_gradients(name, audio):
    adapter = make(name)
    adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
    if not adapter.family.cacheable:
        assert adapter.module.cache is None  # per-recording outputs are not well defined: never cached
        return
    batch = adapter.collate(speech_items(audio))
    counter = CallCounter(adapter.family.encoder_of(adapter.module.hf))
    projector = [p for n, p in adapter.module.hf.named_parameters() if adapter.part_of(n) == "projector"]
    assert projector

    def loss_and_grad():
        adapter.module.zero_grad()
        loss = adapter.loss(batch)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in projector]

    cache = adapter.module.cache
    adapter.module.cache = None  # the transformers forward, audio merged by transformers
    reference, reference_grads = loss_and_grad()
    adapter.module.cache = cache
    first, _ = loss_and_grad()
    calls = counter.calls
    second, grads = loss_and_grad()
    assert counter.calls == calls, "the encoder ran again for cached recordings"
    assert (cache.misses, cache.hits, len(cache)) == (2, 2, 2)
    assert first == pytest.approx(reference, abs=1e-5) and second == pytest.approx(reference, abs=1e-5)
    for g, r in zip(grads, reference_grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
    light = adapter.collate(speech_items(audio))  # every recording cached: no features computed
    assert not set(adapter.family.feature_keys) & set(light)
    assert adapter.loss(light).item() == pytest.approx(reference, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_set_trainable_freezes_exactly_the_named_parts(name):
    adapter = make(name)
    named = list(adapter.module.hf.named_parameters())
    parts = {adapter.part_of(n) for n, _ in named}
    assert {"audio_encoder", "projector", "language_model"} <= parts
    for flags in [(False, False, True), (False, True, False), (True, False, False), (False, True, True)]:
        adapter.set_trainable(*flags)
        wanted = dict(zip(("audio_encoder", "projector", "language_model"), flags))
        for n, param in named:
            assert param.requires_grad == wanted.get(adapter.part_of(n), False), (flags, n)
    assert (adapter.module.cache is not None) == adapter.family.cacheable
    adapter.set_trainable(True, True, True)
    assert adapter.module.cache is None


def overfit(adapter: LALMAdapter, items, steps: int, lr: float = 1e-2) -> float:
    optimizer = torch.optim.AdamW([p for p in adapter.module.parameters() if p.requires_grad], lr=lr)
    batch = adapter.collate(items)
    adapter.module.train()
    for _ in range(steps):
        loss = adapter.loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return loss.item()


@pytest.mark.parametrize("name", NAMES)
def test_lora_trains_language_model_adapters_and_round_trips(name, audio, tmp_path):
    from slufit.models.registry import load_model

    adapter = make(name, lora={"r": 4, "alpha": 8, "dropout": 0.0})
    named = dict(adapter.module.hf.named_parameters())
    lora = {n for n in named if "lora_" in n}
    assert lora and all(adapter.part_of(n) == "language_model" for n in lora)
    assert {n for n, p in named.items() if p.requires_grad} == lora
    adapter.set_trainable(audio_encoder=False, projector=True, language_model=True)
    overfit(adapter, text_items(2), steps=3)
    overfit(adapter, speech_items(audio), steps=2)  # moves the projector too
    adapter.module.eval()  # as the loaded model is (no dropout)
    adapter.save(tmp_path / "run")
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "non_lora.safetensors").is_file()
    loaded = load_model(tmp_path / "run")
    assert loaded.lora is not None and loaded.family.name == name
    for items in (text_items(2), speech_items(audio)):
        assert loaded.loss(loaded.collate(items)).item() == pytest.approx(adapter.loss(adapter.collate(items)).item(),
                                                                          abs=1e-5)
        assert loaded.generate(items, max_new_tokens=6) == adapter.generate(items, max_new_tokens=6)


@pytest.mark.parametrize("name", NAMES)
def test_full_save_load_and_batched_generation(name, audio, tmp_path):
    from slufit.models.registry import load_model

    adapter = make(name)
    overfit(adapter, speech_items(audio), steps=2, lr=1e-3)
    adapter.module.eval()
    adapter.save(tmp_path / "model")
    assert list((tmp_path / "model" / "model").glob("*.safetensors"))
    loaded = load_model(tmp_path / "model")
    items = speech_items(audio)
    together = loaded.generate(items, max_new_tokens=6)
    assert together == adapter.generate(items, max_new_tokens=6)
    assert together == [loaded.generate([item], max_new_tokens=6)[0] for item in items]  # left padding, masks
    beams = loaded.generate(text_items(2), num_beams=2, max_new_tokens=6)
    assert beams == [loaded.generate([i], num_beams=2, max_new_tokens=6)[0] for i in text_items(2)]


@pytest.mark.parametrize("name", NAMES)
def test_audio_longer_than_the_window_is_an_error_naming_the_file(name, tmp_path):
    adapter = make(name)
    seconds = adapter.window_s + 1
    t = np.arange(int(16000 * seconds)) / 16000
    path = tmp_path / "too-long.wav"
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    with pytest.raises(SlufitError, match="too-long.wav.*longer than"):
        adapter.collate([SLUItem(EXAMPLES[0], "speech", audio_path=path)])


@pytest.mark.parametrize("name", NAMES)
def test_gradient_checkpointing_keeps_loss_and_gradients(name, audio):
    plain, checkpointed = make(name), make(name)
    checkpointed.enable_gradient_checkpointing()
    assert checkpointed.module.hf.is_activation_checkpointing and not plain.module.hf.is_activation_checkpointing
    for adapter in (plain, checkpointed):
        adapter.module.train()
    batch = plain.collate(speech_items(audio))
    a, b = plain.loss(batch), checkpointed.loss(checkpointed.collate(speech_items(audio)))
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), abs=1e-5)
    grads = [(n, p.grad) for n, p in plain.module.hf.named_parameters() if p.grad is not None
             and plain.part_of(n) == "language_model"]
    other = dict(checkpointed.module.hf.named_parameters())
    assert grads
    for n, g in grads[:4]:
        torch.testing.assert_close(g, other[n].grad, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def embedded_corpus(tmp_path_factory):
    """The embedded corpus (templated en-US SLU data in SLURP's label space) with espeak-ng speech for 2 of
    its 4 training utterances and both dev utterances: the data `slufit demo` trains on, in miniature."""
    pytest.importorskip("espeakng_loader")
    from slufit.corpus import build_corpus
    from slufit.data.example import read_examples, write_examples
    from slufit.speech.synth import synthesize_examples

    root = tmp_path_factory.mktemp("embedded")
    build_corpus(root / "text", locales=["en-US"], n_train=4, n_dev=2, n_test=2, n_pretrain=1, seed=0)
    train = read_examples(root / "text" / "en-US" / "train.jsonl")
    dev = read_examples(root / "text" / "en-US" / "dev.jsonl")
    voiced = synthesize_examples(train[:2], root, speakers="train", workers=1, progress=False)
    dev = synthesize_examples(dev, root, speakers="test", workers=1, progress=False)
    write_examples(root / "train.jsonl", voiced + train[2:])
    write_examples(root / "dev.jsonl", dev)
    return {"train": root / "train.jsonl", "dev": root / "dev.jsonl", "texts": [e.text for e in train + dev]}


# Wider windows than the contract tests' for the families that read one fixed window: espeak-ng clips of
# the embedded corpus run to several seconds.
TRAIN_WINDOWS = {"voxtral": {"window_s": 8}, "audio-flamingo-3": {"window_s": 10}}


@pytest.mark.parametrize("name", NAMES)
def test_two_step_train_on_the_embedded_corpus_writes_a_run_that_slufit_eval_scores(name, embedded_corpus, tmp_path):
    from slufit.cli import main as cli_main

    module = importlib.import_module(f"slufit.models.lalm.{FAMILIES[name][0]}")
    model, tokenizer, processor, fe = module.tiny(embedded_corpus["texts"] + texts(), **TRAIN_WINDOWS.get(name, {}))
    LALMAdapter(model, tokenizer, family=family_for(model), processor=processor, feature_extractor=fe).save(tmp_path / "model")
    cfg = write_config(tmp_path / "c.yaml", embedded_corpus, tmp_path / "model", {"name": "mix", "epochs": 1},
                       eval={"modalities": ["speech"], "max_new_tokens": 4})
    assert cli_main(["train", "--config", str(cfg)]) == 0
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["done"] and summary["steps"] == 2  # one text batch of 4, one speech batch of 2
    assert list((run / "model" / "model").glob("*.safetensors"))
    assert json.loads((run / "model" / "slufit_model.json").read_text())["family"] == name
    assert cli_main(["eval", "--run", str(run), "--data", str(embedded_corpus["dev"]), "--modality", "speech"]) == 0
    metrics = json.loads((run / "eval" / "dev-speech" / "metrics.json").read_text())
    assert metrics["n"] == 2 and metrics["modality"] == "speech" and "intent" in metrics
    lines = (run / "eval" / "dev-speech" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["file"].startswith("audio/") for line in lines)


@pytest.mark.parametrize("name", NAMES)
def test_a_cached_encoder_output_does_not_depend_on_the_batch(name, audio):
    """What makes a per-recording cache sound: a clip encodes the same alone as beside a longer clip.
    Granite Speech's does not (block attention and convolutions over the padding), so it is not cached."""
    adapter = make(name)
    adapter.module.eval()
    family, hf = adapter.family, adapter.module.hf

    def encoded(items):
        batch = adapter.collate(items, with_targets=False)
        with torch.no_grad():
            return family.encode(hf, *[batch.get(k) for k in family.feature_keys])[0]

    alone, together = encoded(speech_items(audio)[:1]), encoded(speech_items(audio))
    n = alone.shape[0]
    if family.cacheable:
        torch.testing.assert_close(alone, together[:n], atol=1e-5, rtol=1e-4)
        assert together.shape[0] == n
    else:
        assert not torch.allclose(alone, together[:n], atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_registry_loads_a_transformers_folder_of_the_family(name, audio, tmp_path):
    """The hub-id path (AutoConfig -> the family's class, tokenizer, feature extractor, processor), offline."""
    from slufit.models.registry import load_model

    module = importlib.import_module(f"slufit.models.lalm.{FAMILIES[name][0]}")
    model, tokenizer, processor, fe = module.tiny(texts())
    for part in (model, tokenizer, fe):
        part.save_pretrained(tmp_path / "hf")
    adapter = load_model(tmp_path / "hf")
    assert adapter.family.name == name and adapter.base_name == str((tmp_path / "hf").resolve())
    reference = make(name)
    for items in (text_items(), speech_items(audio)):
        assert adapter.loss(adapter.collate(items)).item() == pytest.approx(
            reference.loss(reference.collate(items)).item(), abs=1e-5)


def test_the_registry_names_every_family_model_with_its_hub_id():
    from slufit.models.lalm import families
    from slufit.models.registry import MODELS

    assert {n: MODELS.get(n) for n in families.MODELS} == families.MODELS
    # every registered family has its contract tests: here, or (the two original ones) in test_models_adapter.py
    assert set(families.MODULES) == set(NAMES) | {"qwen2-audio", "qwen2.5-omni-thinker"}


def test_slufit_models_lists_names_hub_ids_sizes_windows_and_options(capsys):
    from slufit.cli import main as cli_main
    from slufit.models.registry import MODELS

    assert cli_main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == list(MODELS)
    known = [r for r in rows if r["family"] != "-"]
    assert len({r["family"] for r in known}) >= 7
    for row in known:
        assert row["hub"] == MODELS[row["name"]] and row["size"] != "-" and row["window_s"] > 0
        assert ("encoder_cache_dir" in row["options"]) == row["encoder_cache"]
        assert ("lora" in row["options"]) == (row["family"] != "ctc-bridge")  # the tiny bridge takes no LoRA
    by_name = {r["name"]: r for r in rows}
    assert by_name["tiny"]["family"] == "ctc-bridge" and "simulate_text" in by_name["tiny"]["options"]
    assert by_name["voxtral-mini-3b"]["window_s"] == 30 and not by_name["granite-speech-3.3-2b"]["encoder_cache"]
    assert cli_main(["models"]) == 0
    table = capsys.readouterr().out
    assert "mistralai/Voxtral-Mini-3B-2507" in table and "audio window" in table


def test_every_listed_name_dry_runs_a_curriculum_config(capsys):
    from slufit.cli import main as cli_main
    from slufit.models.registry import MODELS

    config = REPO / "configs" / "qwen2_audio" / "slurp_curriculum.yaml"
    for name in MODELS:
        assert cli_main(["train", "--config", str(config), "--dry-run", f"model.name={name}"]) == 0
        out = capsys.readouterr().out
        assert f"# model: {name} -> {MODELS[name]} (registered" in out and "stage 1 text" in out and "stage 2 mix" in out
    assert cli_main(["train", "--config", str(config), "--dry-run", "model.name=nobody/nothing"]) == 0
    assert "not a registered name or a folder here" in capsys.readouterr().out


FAMILY_CONFIGS = sorted(str(p.relative_to(REPO)) for d in ("voxtral", "granite_speech", "audio_flamingo3",
                                                            "qwen3_omni", "phi4_multimodal")
                        for p in (REPO / "configs" / d).glob("*.yaml"))


@pytest.mark.parametrize("config", FAMILY_CONFIGS)
def test_family_paper_configs_dry_run_with_the_studys_schedule(config, capsys):
    from slufit.cli import main as cli_main
    from slufit.train.config import load_config

    text = (REPO / config).read_text()
    assert text.startswith("# ") and f"--config {config}" in text.split("model:")[0]  # opens with its launch command
    assert cli_main(["train", "--config", str(REPO / config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    loaded = load_config(REPO / config)
    assert loaded.scheme.name == "curriculum" and loaded.scheme.text_epochs == 2 and loaded.scheme.mix_epochs == 1
    assert loaded.train.global_batch == 128 and loaded.data.speech_fraction == 0.05 and "stage 2 mix" in out
    if "lora" in loaded.model.options:
        assert loaded.train.lr == 1e-4 and not loaded.scheme.trainable.audio_encoder
    else:
        assert loaded.train.lr == 5e-6 and loaded.scheme.mix_lr == 3e-6


def test_granite_mel_matches_an_independent_log_mel_and_the_processors_token_rule():
    """GraniteMel (torch, no torchaudio) against transformers' numpy spectrogram with torchaudio's
    MelSpectrogram settings (hann 400, hop 160, FFT 512, power 2, centred reflect padding, HTK, no norm)."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    from slufit.models.lalm.granite_speech import GraniteMel

    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(16000 + 480)).astype(np.float32)
    fe = GraniteMel()
    features = fe([torch.from_numpy(wave)])
    filters = mel_filter_bank(num_frequency_bins=257, num_mel_filters=80, min_frequency=0.0, max_frequency=8000.0,
                              sampling_rate=16000, norm=None, mel_scale="htk")
    mel = spectrogram(wave, window_function(400, "hann", periodic=True), frame_length=400, hop_length=160,
                      fft_length=512, power=2.0, center=True, pad_mode="reflect", mel_filters=filters)
    logmel = np.log10(np.clip(mel.T, 1e-10, None))
    logmel = np.maximum(logmel, logmel.max() - 8.0) / 4 + 1
    logmel = logmel[: len(logmel) // 2 * 2].reshape(1, -1, 160)
    np.testing.assert_allclose(features["input_features"].numpy(), logmel, atol=1e-4)
    # 104 mel frames -> 52 encoder frames -> 4 windows of 15 -> 12 projector outputs.
    assert features["audio_embed_sizes"] == [12] and features["input_features_mask"].sum().item() == 12


@pytest.mark.parametrize("name", NAMES)
def test_audio_is_read_at_16khz_and_a_feature_extractor_at_another_rate_is_an_error(name, tmp_path):
    adapter = make(name)
    t = np.arange(8000 * 2) / 8000  # 2 s at 8 kHz: resampled, so it gives the tokens of 2 s at 16 kHz
    sf.write(tmp_path / "8k.wav", (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    batch = adapter.collate([SLUItem(EXAMPLES[0], "speech", audio_path=tmp_path / "8k.wav")])
    audio_id = adapter.tokenizer.convert_tokens_to_ids(adapter.family.audio_token)
    assert int((batch["input_ids"] == audio_id).sum()) == FAMILIES[name][1](32000)
    adapter.feature_extractor.sampling_rate = 24000
    with pytest.raises(SlufitError, match="8k.wav.*expects 24000 Hz"):
        adapter.collate([SLUItem(EXAMPLES[0], "speech", audio_path=tmp_path / "8k.wav")])
