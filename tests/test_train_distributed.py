"""Two processes on the CPU (gloo), through `accelerate launch` of the real `slufit train`, with each shipped
launcher config (configs/accelerate/): DDP on a tiny random-weight Qwen2-Audio and on the tiny CTC bridge,
FSDP2 on the Qwen2-Audio (full fine-tuning, and LoRA with gradient accumulation), always a mixed-modality
curriculum (a text stage, then text + speech batches).

How two CPU processes are launched: accelerate 1.16's `--cpu` flag starts ONE process whatever
`--num_processes` says (measured), and its own FSDP refuses the CPU; so the shipped configs are launched with
`--num_processes 2 --mixed_precision no` and ACCELERATE_USE_CPU=true (each process a gloo MULTI_CPU rank),
and FSDP2 is slufit's own `fully_shard` path (slufit.train.distributed), the code a GPU run takes.

Asserted: a 2-process run equals a 1-process run with the same global batch (logged losses within 1e-5, final
weights within 1e-5; measured 2.5e-7 and 3.6e-7); every training item is used once per stage epoch across the
ranks; every test item is predicted exactly once in the gathered predictions; a 2-process FSDP2 run killed with
SIGKILL and resumed from its sharded checkpoint ends with the same predictions and metrics as the
uninterrupted runs, and its saved full model loads in `slufit eval` on one process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from slufit.data.example import Entity, read_examples, write_examples
from slufit.train.config import load_config, resolve_paths
from slufit.train.loop import train

from bridge_support import SMALL_LM, make_bridge
from test_train_support import make_corpus, make_model, write_config

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "configs" / "accelerate"
CURRICULUM = {"name": "curriculum", "text_epochs": 1, "mix_epochs": 1, "mix_lr": 5e-4}
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """A corpus in SLURP's label space (12 training examples, 4 with audio; 3 dev = test), both models, and the
    1-process reference runs (global batch 4 = 1 process x 4 = 2 processes x 2)."""
    root = tmp_path_factory.mktemp("distributed")
    corpus = make_corpus(root / "corpus", n_train=12, train_speech=4, n_dev=3)
    for path in corpus.values():  # the tiny bridge's labels are SLURP's: genre -> music_genre
        fixed = [dataclasses.replace(e, entities=tuple(Entity("music_genre" if x.type == "genre" else x.type, x.filler)
                                                       for x in e.entities)) for e in read_examples(path)]
        write_examples(path, fixed)
    configs = {}
    for family, model, options in (("lalm", make_model(root / "lalm"), {}),
                                   ("bridge", make_bridge(root / "bridge"), {"lm_sizes": SMALL_LM})):
        cfg = write_config(root / f"{family}.yaml", corpus, model, CURRICULUM, data={"test": [str(corpus["dev"])]},
                           train={"seed": 0, "batch_size": 2, "lr": 1e-3, "warmup_ratio": 0.1, "log_every": 1,
                                  "checkpoint_every": 1})
        cfg.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()),
                                       "model": {"name": str(model), "options": options}}))
        reference = resolve_paths(load_config(cfg, ["train.batch_size=4", f"run_dir={root / family}-one"]))
        train(reference)
        configs[family] = (cfg, Path(reference.run_dir))
    return {"root": root, "corpus": corpus, "configs": configs}


def _transformers_folder(folder: Path) -> Path:
    """The tiny Qwen2-Audio as a plain transformers folder (what a hub download gives), for LoRA runs."""
    from slufit.models.lalm.testing import tiny_qwen2_audio, tiny_tokenizer
    from slufit.target import format_target, instruction
    from test_train_support import make_examples

    examples = make_examples("tok", 16, set(), folder / "unused")
    texts = [e.text for e in examples] + [format_target(e) for e in examples] + [instruction()]
    model, processor = tiny_qwen2_audio(tiny_tokenizer(texts, vocab_size=400), hidden=32, layers=1, audio_d_model=32,
                                        audio_layers=1, window_s=5)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    processor.tokenizer.save_pretrained(folder)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(accelerate_config: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`accelerate launch` of `slufit train` on two CPU processes (see the module docstring)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE / accelerate_config),
               "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
               "-m", "slufit.cli", "train", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
                            start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: int = 240) -> str:
    out = proc.communicate(timeout=timeout)[0]
    if proc.returncode:  # the first rank's error, not only the peer's "connection closed"
        errors = [line for line in out.splitlines() if "Error" in line and "error_file" not in line]
        assert False, "\n".join(errors[:6]) + "\n" + out[-3000:]
    assert "Traceback" not in out, out[-4000:]  # no rank died in teardown either
    return out


def _losses(run: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard")).Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag.startswith("loss/")}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from slufit.models.registry import load_model

    return {n: p.detach().clone() for n, p in load_model(str(run / "model")).module.named_parameters()}


def _predictions(run: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run / "eval" / name / "predictions.jsonl").read_text().splitlines()]


def _assert_same_run(got: Path, want: Path, losses: bool = True) -> None:
    if losses:
        a, b = _losses(got), _losses(want)
        assert set(a) == set(b) == {"loss/text", "loss/speech"}
        for tag in a:
            assert len(a[tag]) == len(b[tag]) and max(abs(x - y) for x, y in zip(a[tag], b[tag])) < TOLERANCE, tag
    a, b = _weights(got), _weights(want)
    worst = max((a[n] - b[n]).abs().max().item() for n in b)
    assert worst < TOLERANCE, f"final weights differ by {worst}"
    for name in ("test-speech", "test-text"):
        assert [p["generated"] for p in _predictions(got, name)] == [p["generated"] for p in _predictions(want, name)]
    assert json.loads((got / "summary.json").read_text())["metrics"] == \
        json.loads((want / "summary.json").read_text())["metrics"]


def _assert_each_test_item_once(run: Path, corpus: dict) -> None:
    test = read_examples(corpus["dev"])
    text_keys = [p["slurp_id"] for p in _predictions(run, "test-text")]
    speech_keys = [p["file"] for p in _predictions(run, "test-speech")]
    assert sorted(text_keys) == sorted(e.id for e in test)
    assert sorted(speech_keys) == sorted(r.path for e in test for r in e.recordings)


def _assert_each_training_item_once_per_epoch(log_dir: Path, corpus: dict) -> None:
    per_rank = {rank: [json.loads(line) for line in (log_dir / f"items-rank{rank}.jsonl").read_text().splitlines()]
                for rank in (0, 1)}
    lines = per_rank[0] + per_rank[1]
    # Each rank draws its own dropout: rank 0 keeps train.seed (what one process draws), rank 1 train.seed + 1.
    assert [{line["seed"] for line in per_rank[rank]} for rank in (0, 1)] == [{0}, {1}]
    train_set = read_examples(corpus["train"])
    texts = Counter(e.id for e in train_set)
    speech = Counter(f"{e.id}@{Path(r.path).name}" for e in train_set for r in e.recordings)
    for stage, want in ((0, texts), (1, texts + speech)):
        used = Counter(i for line in lines if line["stage"] == stage for i in line["ids"])
        assert used == want, f"stage {stage}: {used - want} extra, {want - used} missing"
        for line in lines:  # a batch holds one kind on every rank
            if line["stage"] == stage:
                assert all(("@" in i) == (line["kind"] == "speech") for i in line["ids"])


@pytest.mark.parametrize("family", ["lalm", "bridge"])
def test_distributed_ddp_two_processes_equal_one(dist, family, tmp_path):
    cfg, reference = dist["configs"][family]
    run = tmp_path / "run"
    log = tmp_path / "items"
    log.mkdir()
    out = _finish(_launch("8gpu_ddp.yaml", "--config", str(cfg), f"run_dir={run}", env={"SLUFIT_ITEM_LOG": str(log)}))
    assert out.count(f"done: {run}/summary.json") == 2, "both ranks finished"
    _assert_same_run(run, reference)
    _assert_each_training_item_once_per_epoch(log, dist["corpus"])
    _assert_each_test_item_once(run, dist["corpus"])


def _kill_tree(pid: int) -> None:
    """SIGKILL the launcher and every process it started (torch's launcher puts its workers in their own session)."""
    import psutil

    parent = psutil.Process(pid)
    for proc in [*parent.children(recursive=True), parent]:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def test_distributed_fsdp2_sigkill_resume_save_and_eval(dist, tmp_path):
    cfg, reference = dist["configs"]["lalm"]
    run = tmp_path / "run"
    proc = _launch("8gpu_fsdp.yaml", "--config", str(cfg), f"run_dir={run}")
    state_file, killed_at = run / "checkpoints" / "last" / "train_state.json", None
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, json.JSONDecodeError):
            state = None
        if state and state["step"] >= 2:
            _kill_tree(proc.pid)
            killed_at = state
            break
        time.sleep(0.02)
    out = proc.communicate(timeout=60)[0]
    assert killed_at is not None and not (run / "summary.json").exists(), f"not killed mid-run:\n{out[-3000:]}"
    shards = sorted(p.name for p in (run / "checkpoints" / "last" / "sharded").glob("*.distcp"))
    assert len(shards) == 2, f"one shard file per rank: {shards}"

    _finish(_launch("8gpu_fsdp.yaml", "--resume", str(run)))
    # The uninterrupted runs (1 process here; 2 DDP processes above) end the same: same weights, predictions, metrics.
    _assert_same_run(run, reference, losses=False)
    _assert_each_test_item_once(run, dist["corpus"])
    # The full model a sharded run saved is an ordinary one: `slufit eval` loads it on one process.
    from slufit.cli import main as cli_main

    assert (run / "model" / "model" / "model.safetensors").is_file()
    assert cli_main(["eval", "--run", str(run), "--data", str(dist["corpus"]["dev"]), "--modality", "text",
                     "--name", "again"]) == 0
    again, first = _predictions(run, "again"), _predictions(run, "test-text")
    assert [p["generated"] for p in again] == [p["generated"] for p in first]


def test_distributed_fsdp2_lora_with_accumulation_equals_one_process(dist, tmp_path):
    """LoRA (adapters fp32 over a frozen base, sharded with it) and gradient accumulation under FSDP2: the same
    weights as one process (LoRA dropout 0: with dropout each rank draws its own masks, by design)."""
    cfg = dist["configs"]["lalm"][0]
    lora = ["model.name=" + str(_transformers_folder(tmp_path / "hf")), "model.options.lora={r: 4, dropout: 0.0}",
            "train.global_batch=8"]
    reference = resolve_paths(load_config(cfg, [*lora, "train.batch_size=4", f"run_dir={tmp_path / 'one'}"]))
    train(reference)
    run = tmp_path / "run"
    out = _finish(_launch("8gpu_fsdp.yaml", "--config", str(cfg), *lora, f"run_dir={run}"))
    assert "micro-batch 2, grad accumulation 2" in out
    assert (run / "model" / "adapter" / "adapter_model.safetensors").is_file()  # saved as LoRA, not a full model
    _assert_same_run(run, Path(reference.run_dir))


def test_distributed_every_launcher_config_is_tested():
    """Every shipped accelerate config starts a 2-process run in the tests above (DeepSpeed was removed:
    docs/training.md says why)."""
    tested = {"8gpu_ddp.yaml", "8gpu_fsdp.yaml"}
    assert {p.name for p in ACCELERATE.glob("*.yaml")} == tested
    for name in tested:
        header = (ACCELERATE / name).read_text().splitlines()[0]
        assert header.startswith("# accelerate config"), name
    fsdp = yaml.safe_load((ACCELERATE / "8gpu_fsdp.yaml").read_text())
    assert fsdp["fsdp_config"]["fsdp_version"] == 2 and "fsdp_transformer_layer_cls_to_wrap" not in fsdp["fsdp_config"]
