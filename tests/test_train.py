"""The training loop on a tiny random-weight Qwen2-Audio, through the real registry and adapter:
every scheme trains and writes its run folder, the right parameters train, stages see the
items the schedule says, runs are deterministic, and a SIGKILLed run resumes to the same end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from slufit.cli import main as cli_main
from slufit.errors import SlufitError
from slufit.train.config import load_config, resolve_paths
from slufit.train.loop import train

from test_train_support import make_corpus, make_examples, make_model, write_config

REPO = Path(__file__).resolve().parents[1]
SCHEMES = {
    "text_only": {"name": "text_only", "epochs": 1},
    "speech_only": {"name": "speech_only", "epochs": 2},
    "mix": {"name": "mix", "epochs": 1},
    "curriculum": {"name": "curriculum", "text_epochs": 1, "mix_epochs": 1, "mix_lr": 5e-4},
    "crosslingual": {"name": "crosslingual", "source_locale": "en-US", "target_locales": ["de-DE"],
                     "target_speech_count": 1, "epochs": 1},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from slufit.data.example import write_examples

    root = tmp_path_factory.mktemp("train")
    corpus = make_corpus(root / "corpus", n_train=12, train_speech=4, n_dev=2)
    # A second locale for the cross-lingual scheme: 4 texts, 2 with audio.
    write_examples(root / "corpus" / "de.jsonl", make_examples("de", 4, {0, 1}, root / "corpus" / "audio", "de-DE"))
    return {"root": root, "corpus": corpus, "model": make_model(root / "model"), "runs": {}}


def run_scheme(setup, name: str, tag: str = "", **sections) -> Path:
    """Train `name` in-process (once per tag) and return its run folder."""
    key = name + tag
    if key not in setup["runs"]:
        folder = setup["root"] / key
        folder.mkdir()
        corpus = dict(setup["corpus"])
        cfg = write_config(folder / "config.yaml", corpus, setup["model"], SCHEMES[name], **sections)
        config = resolve_paths(load_config(cfg))
        if name == "crosslingual":
            config.data.train.append(str(corpus["train"].parent / "de.jsonl"))
        train(config)
        setup["runs"][key] = Path(config.run_dir)
    return setup["runs"][key]


def parameters(folder: Path) -> dict[str, tuple[str, torch.Tensor]]:
    """name -> (model part, tensor) of a saved slufit model."""
    from slufit.models.registry import load_model

    model = load_model(str(folder))
    return {n: (model.part_of(n), p.detach().clone()) for n, p in model.module.hf.named_parameters()}


@pytest.mark.parametrize("name", list(SCHEMES))
def test_every_scheme_trains_and_writes_its_run_folder(setup, name):
    run = run_scheme(setup, name)
    for path in ("config.yaml", "version.json", "schedule.json", "budget.json", "checkpoints/last/train_state.json",
                 "checkpoints/last/model.safetensors", "checkpoints/last/optimizer.bin", "model/slufit_model.json",
                 "eval/dev-speech/predictions.jsonl", "eval/dev-text/metrics.json", "summary.json"):
        assert (run / path).is_file(), path
    assert not list((run / "checkpoints").glob(".*")), "no temporary checkpoint left behind"
    plans = json.loads((run / "schedule.json").read_text())["stages"]
    summary = json.loads((run / "summary.json").read_text())
    state = json.loads((run / "checkpoints/last/train_state.json").read_text())
    assert summary["done"] and summary["steps"] == state["step"] == sum(p["steps"] for p in plans)
    assert [s["stage"] for s in summary["stages"]] == [p["name"] for p in plans]
    for eval_name in ("dev-speech", "dev-text"):
        metrics = summary["metrics"][eval_name]
        assert {"intent", "slu_f1", "ci", "parse_failures", "per_locale"} <= set(metrics)
        assert metrics["n"] == 2 and list(metrics["per_locale"]) == ["en-US"]
    assert load_config(run / "config.yaml").scheme.name == name  # the resolved config reloads
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"]
    kinds = {"text"} if name == "text_only" else {"speech"} if name == "speech_only" else {"text", "speech"}
    assert {"lr", "items_per_s", "eval/dev-text/intent"} | {f"loss/{k}" for k in kinds} <= set(scalars), scalars
    if name == "crosslingual":
        budget = json.loads((run / "budget.json").read_text())
        assert len(budget["target"]["de-DE"]) == 1 and plans[0]["items"] == {"text": 16, "speech": 5, "rehearsal": 0}
        assert len(budget["ids"]) == 5 and {i for i in budget["ids"] if i.startswith("de")} == set(budget["target"]["de-DE"])


def test_text_only_trains_the_language_model_only(setup):
    before = parameters(setup["model"])
    after = parameters(run_scheme(setup, "text_only") / "model")
    for name, (part, tensor) in before.items():
        changed = not torch.equal(tensor, after[name][1])
        if part == "language_model":
            assert changed, f"{name} (language model) did not change"
        else:
            assert not changed, f"{name} ({part}) is frozen in text-only but changed"


def test_mix_trains_every_part(setup):
    before = parameters(setup["model"])
    after = parameters(run_scheme(setup, "mix") / "model")
    unchanged = [n for n, (part, t) in before.items() if torch.equal(t, after[n][1])]
    assert not unchanged, f"trainable parameters that did not change: {unchanged[:5]}"


def test_stages_see_exactly_the_items_of_their_schedule(setup, tmp_path):
    from slufit.models.registry import load_model

    seen: list[tuple[str, int]] = []
    encoder_calls_before: list[int] = []  # audio encoder forward calls before each batch
    calls = [0]
    begun: list[tuple[int, int, int]] = []  # (batches seen before, text items, speech items) per begin_stage call

    def load(name, **options):
        model = load_model(name, **options)
        model.module.hf.model.audio_tower.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        collate = model.collate
        # The optional hook: the trainer hands each stage's items to the model as the stage starts.
        model.begin_stage = lambda items: begun.append((len(seen), sum(i.modality == "text" for i in items),
                                                        sum(i.modality == "speech" for i in items)))

        def counting(items, *a, **k):
            seen.append((items[0].modality, len(items)))
            encoder_calls_before.append(calls[0])
            return collate(items, *a, **k)
        model.collate = counting
        return model

    cfg = write_config(tmp_path / "c.yaml", setup["corpus"], setup["model"],
                       {"name": "curriculum", "text_epochs": 2, "mix_epochs": 1}, eval={"modalities": []})
    config = resolve_paths(load_config(cfg))
    train(config, load=load)
    plans = json.loads((Path(config.run_dir) / "schedule.json").read_text())["stages"]
    text_stage, mix_stage = seen[:plans[0]["batches"]], seen[plans[0]["batches"]:]
    assert len(mix_stage) == plans[1]["batches"]
    assert {m for m, _ in text_stage} == {"text"}, "a text-only stage saw a speech item"
    assert sum(n for _, n in text_stage) == 2 * 12
    assert sum(n for m, n in mix_stage if m == "text") == 12 and sum(n for m, n in mix_stage if m == "speech") == 4
    assert encoder_calls_before[len(text_stage)] == 0, "the audio encoder ran during the text-only stage"
    assert calls[0] > 0
    assert begun == [(0, 12, 0), (len(text_stage), 12, 4)]


def test_same_seed_same_data_same_weights_and_metrics(setup):
    first, second = run_scheme(setup, "mix"), run_scheme(setup, "mix", tag="-again")
    assert json.loads((first / "summary.json").read_text())["metrics"] == \
        json.loads((second / "summary.json").read_text())["metrics"]
    a, b = parameters(first / "model"), parameters(second / "model")
    assert all(torch.equal(a[n][1], b[n][1]) for n in a)


def test_prefetching_trains_exactly_the_same_batches(setup):
    """Speech batches collated ahead in a thread (train.prefetch 2; the default on a GPU) change nothing in what
    is trained."""
    first = run_scheme(setup, "mix", tag="-prefetch", train={"prefetch": 2})
    second = run_scheme(setup, "mix", tag="-no-prefetch", train={"prefetch": 0})
    assert json.loads((first / "summary.json").read_text())["metrics"] == \
        json.loads((second / "summary.json").read_text())["metrics"]
    a, b = parameters(first / "model"), parameters(second / "model")
    assert all(torch.equal(a[n][1], b[n][1]) for n in a)


def _slufit(*args: str) -> subprocess.Popen:
    # The subprocess computes with as many threads as this process: float sums then agree bit for bit
    # with the in-process reference run.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, "-m", "slufit.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def test_sigkill_then_resume_ends_like_an_uninterrupted_run(setup, tmp_path):
    scheme = {"name": "curriculum", "text_epochs": 2, "mix_epochs": 1, "mix_lr": 5e-4}
    sections = {"train": {"seed": 0, "batch_size": 2, "lr": 1e-3, "warmup_ratio": 0.1, "checkpoint_every": 1}}
    cfg = write_config(tmp_path / "c.yaml", setup["corpus"], setup["model"], scheme, **sections)
    run_dir = tmp_path / "run"

    proc = _slufit("train", "--config", str(cfg))
    state_file, killed_at = run_dir / "checkpoints" / "last" / "train_state.json", None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state_file.is_file():
            try:
                state = json.loads(state_file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if state["step"] >= 3:
                proc.send_signal(signal.SIGKILL)
                killed_at = state
                break
        time.sleep(0.02)
    out = proc.communicate(timeout=60)[0]
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, f"not killed mid-run:\n{out[-2000:]}"
    assert not (run_dir / "summary.json").exists()

    resumed = _slufit("train", "--resume", str(run_dir))
    out = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, out[-3000:]

    reference = resolve_paths(load_config(cfg, [f"run_dir={tmp_path / 'reference'}"]))
    train(reference)
    got = json.loads((run_dir / "summary.json").read_text())
    want = json.loads((Path(reference.run_dir) / "summary.json").read_text())
    assert got["steps"] == want["steps"] and got["metrics"] == want["metrics"] and got["stages"] == want["stages"]
    a, b = parameters(run_dir / "model"), parameters(Path(reference.run_dir) / "model")
    assert all(torch.equal(a[n][1], b[n][1]) for n in a), "resumed weights differ from the uninterrupted run"
    # A finished run is not trained again.
    again = _slufit("train", "--resume", str(run_dir))
    assert again.communicate(timeout=60)[0].strip().endswith("already finished (summary.json); nothing to do")


def test_a_run_folder_is_never_overwritten(setup):
    run = run_scheme(setup, "text_only")
    with pytest.raises(SlufitError, match="--resume"):
        train(load_config(run / "config.yaml"))


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO / "configs" / "qwen2_audio").glob("*.yaml")))
def test_paper_configs_dry_run_without_weights(config, capsys):
    assert cli_main(["train", "--config", str(REPO / "configs" / "qwen2_audio" / config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lr: 5.0e-06" in out and "global_batch: 128" in out and "stage 1" in out


def test_dry_run_prints_the_schedule(setup, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", setup["corpus"], setup["model"], SCHEMES["curriculum"])
    assert cli_main(["train", "--config", str(cfg), "--dry-run", "train.batch_size=3"]) == 0
    out = capsys.readouterr().out
    assert "stage 1 text: 12 text + 0 speech items x 1 epoch(s) = 4 batches, 4 steps" in out
    assert "stage 2 mix: 12 text + 4 speech items x 1 epoch(s) = 6 batches, 6 steps" in out and "peak lr 0.0005" in out
    assert not (tmp_path / "run").exists(), "a dry run writes nothing"


def test_rehearsal_stage_adds_speech_to_transcript_batches(setup, tmp_path):
    scheme = {"name": "curriculum", "stages": [
        {"name": "text+rehearsal", "text": True, "speech": False, "rehearsal": 0.5,
         "trainable": {"audio_encoder": False, "projector": True, "language_model": True}}]}
    cfg = write_config(tmp_path / "c.yaml", setup["corpus"], setup["model"], scheme,
                       data={"rehearsal": str(setup["corpus"]["dev"])}, eval={"modalities": ["text"]})
    config = resolve_paths(load_config(cfg))
    summary = train(config)
    plans = json.loads((Path(config.run_dir) / "schedule.json").read_text())["stages"]
    assert plans[0]["items"] == {"text": 12, "speech": 0, "rehearsal": 6}
    assert summary["steps"] == 3 + 2  # 12 text items / 4 + 6 rehearsal items / 4
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert "loss/rehearsal" in EventAccumulator(str(Path(config.run_dir) / "tensorboard")).Reload().Tags()["scalars"]
