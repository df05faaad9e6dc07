"""Grids at cluster scale: several workers on one grid folder, shards, a run per array task, stale-lock
takeover after SIGKILL, and `slufit grid plan`'s commands.

Real training: `slufit grid` / `slufit train` worker processes on a 4-run grid over the training tests'
tiny random-weight Qwen2-Audio and small voiced corpus (tests/test_train_support.py). Every assertion
reads the run folders (summary.json, grid_log.jsonl, tensorboard event files, checkpoints), never what
the workers print."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from slufit.cli import main as cli_main
from slufit.errors import SlufitError
from slufit.grid.lock import LOCK_FILE, LOG_FILE, RunLock, read_lock
from slufit.grid.plan import select_runs
from slufit.grid.runner import default_train_fn, run_grid
from slufit.grid.spec import RunSpec, load_grid

from test_grid_fixtures import write_run
from test_train_support import make_corpus, make_model

# grid.runs() order: the index of `slufit grid plan`, `--index K` and $SLURM_ARRAY_TASK_ID.
RUNS = ["mix-p50-s0-en-US", "mix-p100-s0-en-US", "curriculum-p50-s0-en-US", "curriculum-p100-s0-en-US"]


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster")
    corpus = make_corpus(root / "corpus", n_train=12, train_speech=12, n_dev=2)
    model = make_model(root / "model")
    grid = {
        "name": "cluster", "out": str(root / "unused"), "schemes": ["mix", "curriculum"], "fractions": [50, 100],
        "seeds": [0], "locales": ["en-US"], "data": {"train": str(corpus["train"]), "test": str(corpus["dev"])},
        "train": {"overrides": {
            "model": {"name": str(model)},
            # A checkpoint every step: a worker killed at any step resumes from the step before.
            "train": {"batch_size": 4, "lr": 1e-3, "warmup_ratio": 0.1, "checkpoint_every": 1},
            "scheme": {"epochs": 2, "text_epochs": 1, "mix_epochs": 1},
            "eval": {"modalities": ["speech"], "beams": 1, "batch_size": 8, "max_new_tokens": 8}}},
        "report": {"eval": "test-speech", "reference": "mix"},
    }
    path = root / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    assert [r.name for r in load_grid(path).runs()] == RUNS
    return path


def slufit(*args: str, log: Path) -> subprocess.Popen:
    """A `slufit` process (same interpreter, same source tree); its output goes to `log`."""
    # As many threads as this process, so float sums agree bit for bit across processes.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    handle = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "slufit.cli", *args], stdout=handle, stderr=subprocess.STDOUT,
                            env=env)
    handle.close()
    return proc


def finish(proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    proc.wait(timeout=timeout)
    assert proc.returncode == 0, log.read_text()[-3000:]


def events(run_dir: Path) -> list[dict]:
    path = run_dir / LOG_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def trained_by(run_dir: Path) -> list[int]:
    """The pid of every worker that started training this run (grid_log.jsonl)."""
    return [e["pid"] for e in events(run_dir) if e["event"] == "train"]


def assert_trained_once(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["done"], run_dir
    kinds = [e["event"] for e in events(run_dir)]
    assert kinds == ["train", "done"], f"{run_dir.name}: {kinds}"
    # The trainer's own record: each training process writes one TensorBoard event file.
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1, run_dir
    assert not (run_dir / LOCK_FILE).exists(), "lock released"


def model_tensors(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(model_dir.rglob("*.safetensors"))
    assert files, model_dir
    return {f"{f.name}:{k}": v for f in files for k, v in load_file(f).items()}


# ---- (d) plan: every run with the command that trains it alone; the uninterrupted reference of (b)


@pytest.fixture(scope="module")
def planned(grid_file, tmp_path_factory) -> Path:
    """A grid folder where `grid plan` was run and its command for run 1 then run by hand (uninterrupted)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("planned") / "g"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(["grid", "plan", "--config", str(grid_file), "--out", str(out)]) == 0
    rows = {line.split()[0]: line.split(maxsplit=3) for line in printed.getvalue().splitlines()[1:5]}
    assert rows["1"][1:3] == [RUNS[1], "todo"], printed.getvalue()
    command = shlex.split(rows["1"][3])
    assert command[:3] == ["slufit", "train", "--config"], command
    proc = slufit(*command[1:], log=out.parent / "by-hand.log")
    finish(proc, out.parent / "by-hand.log")
    return out


def test_plan_command_trains_exactly_that_run(planned, grid_file, capsys):
    run_dir = planned / RUNS[1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["done"] and summary["steps"] > 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["scheme"]["name"] == "mix" and config["data"]["speech_fraction"] == 1.0
    assert config["run_dir"] == str(run_dir.resolve())
    for name in RUNS[:1] + RUNS[2:]:  # planned (config written) but not trained
        other = planned / name
        assert (other / "config.yaml").is_file() and (other / "grid_run.json").is_file()
        assert not (other / "checkpoints").exists() and not (other / "summary.json").exists(), name

    # The plan now says so, and the report lists the three others as unfinished.
    assert cli_main(["grid", "plan", "--config", str(grid_file), "--out", str(planned)]) == 0
    states = {line.split()[1]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:5]}
    assert states == {RUNS[0]: "todo", RUNS[1]: "done", RUNS[2]: "todo", RUNS[3]: "todo"}
    assert cli_main(["grid", "report", str(planned)]) == 0
    report = (planned / "report.md").read_text()
    assert "**3 unfinished run(s), not in the tables below**" in report
    assert all(f"- `{name}`: todo" in report for name in RUNS[:1] + RUNS[2:])
    assert (planned / "results.csv").read_text().count("\n") == 2  # header + the one finished run


def test_plan_of_the_study_grid_has_a_real_command_for_every_run(tmp_path, capsys):
    repo = Path(__file__).resolve().parents[1]
    grid = repo / "configs" / "grids" / "slurp.yaml"
    assert cli_main(["grid", "plan", "--config", str(grid), "--out", str(tmp_path / "slurp"), "--launcher",
                     "accelerate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = load_grid(grid).runs()
    rows = lines[1:1 + len(runs)]
    assert [row.split()[1] for row in rows] == [r.name for r in runs]
    for row, run in zip(rows, runs):
        command = shlex.split(row.split(maxsplit=3)[3])
        assert command[:3] == ["accelerate", "launch", "--config_file"] and command[4:6] == ["-m", "slufit.cli"]
        assert Path(command[3]).resolve() == (repo / "configs" / "accelerate" / "8gpu_fsdp.yaml").resolve()
        assert command[6:8] == ["train", "--config"]
        config = yaml.safe_load(Path(command[8]).read_text())
        assert config["model"]["name"] == "qwen2-audio-7b-instruct" and config["scheme"]["name"] in (run.scheme, "text_only")
        assert config["train"]["global_batch"] == 128
    assert any(line.strip().startswith(f"sbatch --array=0-{len(runs) - 1} ") for line in lines)


# ---- (a) concurrent workers on one grid folder


def test_three_concurrent_workers_train_every_run_exactly_once(grid_file, tmp_path):
    out = tmp_path / "g"
    workers = [slufit("grid", "--config", str(grid_file), "--out", str(out), log=tmp_path / f"w{i}.log")
               for i in range(3)]
    for i, proc in enumerate(workers):
        finish(proc, tmp_path / f"w{i}.log")
    pids = {proc.pid for proc in workers}
    who = {}
    for name in RUNS:
        assert_trained_once(out / name)
        (who[name],) = trained_by(out / name)
        assert who[name] in pids
    assert len(set(who.values())) >= 2, f"the workers did not run concurrently: {who}"
    # The last report written holds every run.
    assert (out / "results.csv").read_text().count("\n") == 1 + len(RUNS)
    assert "unfinished" not in (out / "report.md").read_text()


# ---- (c) shards


def test_two_shards_cover_every_run_once(grid_file, tmp_path):
    out = tmp_path / "g"
    shards = [slufit("grid", "--config", str(grid_file), "--out", str(out), "--shard", f"{i}/2",
                     log=tmp_path / f"s{i}.log") for i in (1, 2)]
    for i, proc in enumerate(shards, 1):
        finish(proc, tmp_path / f"s{i}.log")
    for k, name in enumerate(RUNS):
        assert_trained_once(out / name)
        assert trained_by(out / name) == [shards[k % 2].pid], name  # shard 1: runs 0 and 2; shard 2: runs 1 and 3


def test_shards_and_indices_partition_any_grid():
    runs = [RunSpec("mix", float(f), 0, "en-US") for f in range(1, 12)]
    for n in (1, 2, 3, 5, 11, 13):
        chosen = [k for i in range(1, n + 1) for k, _ in select_runs(runs, shard=(i, n))]
        assert sorted(chosen) == list(range(len(runs))), n
    assert select_runs(runs, index=4) == [(4, runs[4])]


def test_bad_shard_and_index_are_one_line_errors(grid_file, tmp_path, capsys):
    assert cli_main(["grid", "--config", str(grid_file), "--shard", "3/2"]) == 2
    assert "I must be between 1 and N" in capsys.readouterr().err
    assert cli_main(["grid", "--config", str(grid_file), "--out", str(tmp_path / "g"), "--index", "4"]) == 2
    assert "the grid has runs 0 to 3" in capsys.readouterr().err
    assert cli_main(["grid", "plan", "--config", str(grid_file), "--shard", "1/2"]) == 2
    assert "`grid plan` lists every run" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_a_grid_worker_refuses_to_run_as_one_rank_of_a_distributed_launch(grid_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert cli_main(["grid", "--config", str(grid_file), "--out", str(tmp_path / "g")]) == 2
    assert "--launcher accelerate" in capsys.readouterr().err and not (tmp_path / "g").exists()


# ---- (b) a SIGKILLed worker's stale lock is taken over; the run ends as if never interrupted


def kill_at_step(proc: subprocess.Popen, run_dir: Path, step: int, sig: int) -> dict:
    state_file = run_dir / "checkpoints" / "last" / "train_state.json"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, json.JSONDecodeError):
            time.sleep(0.02)
            continue
        if state["step"] >= step:
            proc.send_signal(sig)
            proc.wait(timeout=120)
            return state
        time.sleep(0.02)
    raise AssertionError(f"the worker ended (rc {proc.returncode}) before step {step}")


def test_sigkilled_worker_stale_lock_is_taken_over_and_the_run_ends_like_an_uninterrupted_one(
        grid_file, planned, tmp_path):
    out, name = tmp_path / "g", RUNS[1]
    run_dir = out / name
    first = slufit("grid", "--config", str(grid_file), "--out", str(out), "--index", "1", log=tmp_path / "first.log")
    killed_at = kill_at_step(first, run_dir, 3, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    lock = read_lock(run_dir)
    assert lock is not None and lock.pid == first.pid, "the killed worker left its lock"
    assert not (run_dir / "summary.json").exists()

    # A lock from another host with a fresh heartbeat is left alone (its worker may be alive there)...
    foreign = json.loads((run_dir / LOCK_FILE).read_text())
    (run_dir / LOCK_FILE).write_text(json.dumps({**foreign, "host": "another-node"}))
    grid = load_grid(grid_file, out=out)
    run_grid(grid, index=1, train_fn=lambda config, resume: pytest.fail("trained a locked run"), log=lambda line: None)
    assert read_lock(run_dir).host == "another-node"
    (run_dir / LOCK_FILE).write_text(json.dumps(foreign))
    # ...but on this host the killed worker's pid is visibly gone: the next worker, with the default
    # 10-minute timeout, takes the run over at once and resumes it.
    assert read_lock(run_dir).holder_gone() and lock.age() < 600
    second = slufit("grid", "--config", str(grid_file), "--out", str(out), "--index", "1",
                    log=tmp_path / "second.log")
    finish(second, tmp_path / "second.log")
    log = events(run_dir)
    assert [(e["event"], e["pid"], e.get("state")) for e in log] == [
        ("train", first.pid, "new"), ("train", second.pid, "partial"), ("done", second.pid, None)]
    assert log[1]["took_over"]["token"] == lock.token
    assert (run_dir / f"lock.takeover-{lock.token}").is_file() and not (run_dir / LOCK_FILE).exists()
    # Resumed from the checkpoint the kill left, not retrained from scratch: the second process's
    # TensorBoard log starts after the killed one's steps.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"), key=lambda f: f.stat().st_mtime)
    assert len(files) == 2
    # (The killed process's own events were still buffered: SIGKILL lost them.)
    resumed_steps = [e.step for e in EventAccumulator(str(files[1])).Reload().Scalars("lr")]
    assert resumed_steps[0] > killed_at["step"] >= 3, resumed_steps

    got = json.loads((run_dir / "summary.json").read_text())
    want = json.loads((planned / name / "summary.json").read_text())
    assert got["steps"] == want["steps"] and got["metrics"] == want["metrics"] and got["stages"] == want["stages"]
    a, b = model_tensors(run_dir / "model"), model_tensors(planned / name / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"

    # A finished run is never retrained.
    run_grid(grid, index=1, train_fn=lambda config, resume: pytest.fail("retrained a finished run"),
             log=lambda line: None, lock_timeout=0)
    assert len(events(run_dir)) == 3


def test_a_damaged_checkpoint_fails_its_run_by_name_and_the_worker_goes_on(grid_file, tmp_path):
    """A truncated checkpoint (a full disk, a copy cut short) fails that run in one line naming the file;
    the worker records it in the run's grid log and trains the runs after it."""
    out = tmp_path / "g"
    first = slufit("grid", "--config", str(grid_file), "--out", str(out), "--index", "0", log=tmp_path / "first.log")
    kill_at_step(first, out / RUNS[0], 2, signal.SIGKILL)
    damaged = out / RUNS[0] / "checkpoints" / "last" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    grid = load_grid(grid_file, out=out)
    lines, trained = [], []

    def train_fn(config, resume):
        trained.append(Path(config.run_dir).name)
        if Path(config.run_dir).name == RUNS[0]:
            return default_train_fn()(config, resume)
        # The other runs: stand-ins that finish at once (this test is about the worker, not training).
        Path(config.run_dir, "summary.json").write_text(json.dumps({"done": True}))

    with pytest.raises(SlufitError, match=rf"1 run\(s\) failed .*{RUNS[0]}"):
        run_grid(grid, shard=None, train_fn=train_fn, log=lines.append)
    assert trained == RUNS, "the runs after the damaged one were not reached"
    failure = [line for line in lines if "failed:" in line]
    assert len(failure) == 1 and str(damaged) in failure[0] and RUNS[0] in failure[0], lines
    last = events(out / RUNS[0])[-1]
    assert last["event"] == "failed" and str(damaged) in last["reason"] and last["traceback"] is None
    assert damaged.stat().st_size == 1000, "the damaged file is kept for the user to look at"
    assert not (out / RUNS[0] / LOCK_FILE).exists()


def test_sigterm_stops_a_worker_and_releases_its_lock(grid_file, tmp_path):
    out, name = tmp_path / "g", RUNS[0]
    worker = slufit("grid", "--config", str(grid_file), "--out", str(out), "--index", "0", log=tmp_path / "w.log")
    kill_at_step(worker, out / name, 2, signal.SIGTERM)
    assert worker.returncode == 130, (tmp_path / "w.log").read_text()[-2000:]
    assert not (out / name / LOCK_FILE).exists(), "a requeued task would find the run locked"
    assert [e["event"] for e in events(out / name)] == ["train", "stopped"]
    assert (out / name / "checkpoints" / "last" / "train_state.json").is_file()


# ---- the lock itself


def test_lock_is_exclusive_and_a_stale_lock_is_taken_over_by_exactly_one_worker(tmp_path):
    run_dir = tmp_path / "run"
    held = RunLock.acquire(run_dir)
    assert held is not None and RunLock.acquire(run_dir) is None
    assert set(json.loads((run_dir / LOCK_FILE).read_text())) == {"host", "pid", "start", "token"}
    time.sleep(0.05)
    assert held.refresh() and read_lock(run_dir).heartbeat > held.info.start

    # The holder dies: its heartbeat goes stale. Eight workers race for the run; one wins.
    hour_ago = time.time() - 3600
    os.utime(run_dir / LOCK_FILE, (hour_ago, hour_ago))
    assert read_lock(run_dir).stale(600)
    won, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        lock = RunLock.acquire(run_dir, timeout=600)
        if lock is not None:
            won.append(lock)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and won[0].took_over.token == held.info.token
    assert read_lock(run_dir).token == won[0].info.token
    # The old holder learns it lost the run, and its release leaves the new lock alone.
    assert not held.refresh() and held.lost.token == won[0].info.token
    held.release()
    assert read_lock(run_dir).token == won[0].info.token
    won[0].release()
    assert read_lock(run_dir) is None and RunLock.acquire(run_dir) is not None
    assert not list(run_dir.glob(".*.tmp"))


def test_heartbeat_thread_refreshes_the_lock_and_reports_a_takeover(tmp_path):
    lock = RunLock.acquire(tmp_path / "run")
    lost = threading.Event()
    with lock.heartbeat(0.05, lost.set):
        time.sleep(0.3)
        assert read_lock(tmp_path / "run").heartbeat > lock.info.start
        assert RunLock.acquire(tmp_path / "run") is None  # fresh: left alone
        assert RunLock.acquire(tmp_path / "run", timeout=0) is not None  # every lock is stale at timeout 0
        assert lost.wait(2), "the holder did not notice the takeover"
    assert lock.lost.token == read_lock(tmp_path / "run").token


def test_report_lists_unfinished_runs(tmp_path):
    grid = tmp_path / "g"
    write_run(grid, RunSpec("text_only", 0.0, 0, "en-US"), 0.5, 0.4)
    write_run(grid, RunSpec("mix", 100.0, 0, "en-US"), 0.9, 0.8)
    partial = write_run(grid, RunSpec("mix", 5.0, 0, "en-US"), 0.7, 0.6, done=False)
    (partial / "checkpoints" / "last").mkdir(parents=True)
    locked = write_run(grid, RunSpec("curriculum", 5.0, 0, "en-US"), 0.7, 0.6, done=False)
    assert RunLock.acquire(locked) is not None
    (grid / "grid.yaml").write_text(yaml.safe_dump({
        "name": "g", "schemes": ["text_only", "mix", "curriculum"], "fractions": [5, 100], "seeds": [0],
        "locales": ["en-US"], "data": {"train": "x/{locale}.jsonl", "test": "y/{locale}.jsonl"}}))
    assert cli_main(["grid", "report", str(grid)]) == 0
    report = (grid / "report.md").read_text()
    assert "**3 unfinished run(s), not in the tables below**" in report
    assert "- `mix-p05-s0-en-US`: partial" in report
    assert f"- `curriculum-p05-s0-en-US`: todo, locked by " in report
    assert "- `curriculum-p100-s0-en-US`: not started" in report
    assert (grid / "results.csv").read_text().count("\n") == 3


def test_accelerate_launcher_trains_the_run_in_a_child_under_the_workers_lock(grid_file, tmp_path):
    """The Slurm template's path: the worker holds the lock and heartbeats while `accelerate launch` trains
    (here a one-process CPU accelerate config)."""
    accelerate_config = tmp_path / "cpu.yaml"
    accelerate_config.write_text(yaml.safe_dump({
        "compute_environment": "LOCAL_MACHINE", "distributed_type": "NO", "num_processes": 1, "num_machines": 1,
        "mixed_precision": "no", "use_cpu": True}))
    out, name = tmp_path / "g", RUNS[2]
    worker = slufit("grid", "--config", str(grid_file), "--out", str(out), "--index", "2", "--accelerate-config",
                    str(accelerate_config), log=tmp_path / "w.log")
    finish(worker, tmp_path / "w.log")
    assert_trained_once(out / name)
    assert trained_by(out / name) == [worker.pid]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [name]


def test_a_worker_that_loses_its_lock_stops_training(grid_file, tmp_path):
    """A worker stalled past the timeout has had its run taken over: its heartbeat thread notices and stops it."""
    grid = load_grid(grid_file, out=tmp_path / "g")
    stolen = []

    def stalled_trainer(config, resume):
        stolen.append(RunLock.acquire(Path(config.run_dir), timeout=0))  # another worker takes the run over
        time.sleep(30)
        pytest.fail("training went on after the lock was lost")

    start = time.monotonic()
    with pytest.raises(SlufitError, match="another worker took this run over"):
        run_grid(grid, index=0, train_fn=stalled_trainer, log=lambda line: None, lock_timeout=0.4)
    assert time.monotonic() - start < 10, "stopped only when the trainer returned"
    assert stolen[0] is not None and read_lock(tmp_path / "g" / RUNS[0]).token == stolen[0].info.token
