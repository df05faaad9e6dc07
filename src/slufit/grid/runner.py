"""Run a grid: one training run per grid point, each into its own run folder, then the report.

Resumable by construction: a run whose `summary.json` says done is skipped, a run
with a checkpoint resumes from it, and the rest start fresh. A worker trains only
the runs whose lock it takes (slufit.grid.lock), so any number of workers, on any
machines sharing the grid folder, can run the same grid: each run is trained once.
A worker may be given a share of the runs (`--shard I/N`) or one run (`--index K`,
a Slurm array task). Runs are trained in this process through slufit.train's Python
entry point, or, with an accelerate config, by `accelerate launch ... slufit train`
in a child process that the worker waits on (multi-GPU).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from slufit.errors import SlufitError
from slufit.grid.lock import LOCK_TIMEOUT, LOG_FILE, RunLock, log_event, read_lock, run_state
from slufit.grid.plan import (build_run_config, check_accelerate_config, run_overrides, select_runs,  # noqa: F401
                              train_command, write_grid_file, write_run_files)
from slufit.grid.report import build_report
from slufit.grid.spec import GridSpec, RunSpec

# train_fn(config, resume) trains one run into config.run_dir (slufit.train's entry point by default).
TrainFn = Callable[[Any, bool], Any]
__all__ = ["run_grid", "run_state", "build_run_config", "run_overrides", "write_grid_file"]


def default_train_fn() -> TrainFn:
    """slufit.train's Python entry point: train one run into its run folder (a curriculum run may start
    from its grid's text-only run: `text_stage_source`)."""
    from slufit.train.loop import train

    def train_fn(config, resume, warm_start=None):
        return train(config, resume=resume, warm_start=warm_start)

    train_fn.warm_start = True  # type: ignore[attr-defined]
    return train_fn


def text_stage_source(grid: GridSpec, run: RunSpec) -> Path | None:
    """The grid's finished text-only run of the same seed and locale, for a monolingual curriculum run:
    its checkpoint is the curriculum's text stage when the settings agree (slufit.train.loop.warm_start_mismatch
    checks), so that stage is not trained twice."""
    if run.scheme != "curriculum" or run.crosslingual or "text_only" not in grid.schemes:
        return None
    source = grid.out / RunSpec("text_only", 0.0, run.seed, run.locale).name
    return source if run_state(source) == "done" else None


def heartbeat_interval(timeout: float) -> float:
    """Seconds between heartbeats: several per timeout, at most every 30 s."""
    return max(0.1, min(30.0, timeout / 4))


def run_grid(grid: GridSpec, eval_name: str | None = None, dry_run: bool = False, train_fn: TrainFn | None = None,
             log: Callable[[str], None] = print, shard: tuple[int, int] | None = None, index: int | None = None,
             accelerate_config: Path | None = None, lock_timeout: float = LOCK_TIMEOUT) -> Path | None:
    """Train every unfinished, unlocked run of `grid` (or of its shard / run `index`), then build the report.

    Returns the report's path (None on a dry run or when no run has finished).
    """
    check_accelerate_config(accelerate_config)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Each process would lock a different run and train it as one rank of a distributed job.
        raise SlufitError("slufit grid runs one worker per process, not under `accelerate launch` / torchrun: "
                          "give it --launcher accelerate (or --accelerate-config FILE) to launch each run")
    runs = grid.runs()
    chosen = select_runs(runs, shard, index)
    grid.out.mkdir(parents=True, exist_ok=True)
    states = {run.name: run_state(grid.out / run.name) for _, run in chosen}
    counts = {s: sum(v == s for v in states.values()) for s in ("done", "partial", "new")}
    what = f"{len(runs)} runs" if len(chosen) == len(runs) else (
        f"run {index} of {len(runs)} runs" if index is not None else f"shard {shard[0]}/{shard[1]}: "
        f"{len(chosen)} of {len(runs)} runs")
    log(f"grid {grid.name}: {what} in {grid.out} ({counts['done']} done, {counts['partial']} to resume, "
        f"{counts['new']} new)")
    if dry_run:
        for _, run in chosen:
            lock = read_lock(grid.out / run.name) if states[run.name] != "done" else None
            log(f"  {run.name}: {states[run.name]}" + (f", {lock.describe(lock_timeout)}" if lock else ""))
        return None
    write_grid_file(grid)
    if accelerate_config is None:
        train_fn = train_fn or default_train_fn()
    busy, failed = [], []
    with _sigterm_as_interrupt():
        for position, (_, run) in enumerate(chosen, start=1):
            tag = f"[{position}/{len(chosen)}] {run.name}"
            run_dir = grid.out / run.name
            if run_state(run_dir) == "done":
                log(f"{tag}: done, skipped")
                continue
            lock = RunLock.acquire(run_dir, lock_timeout)
            if lock is None:
                held = read_lock(run_dir)
                log(f"{tag}: {held.describe(lock_timeout) if held else 'locked'}; skipped")
                busy.append(run.name)
                continue
            try:
                _train_locked(grid, run, run_dir, lock, tag, train_fn, accelerate_config, lock_timeout, log)
            except Exception as err:  # noqa: BLE001 - one broken run must not stop the runs after it
                if lock.lost:
                    raise
                log(f"{tag}: failed: {err}")
                failed.append(run.name)
            finally:
                lock.release()
    if busy:
        log(f"{len(busy)} run(s) held by other workers, not waited for: {', '.join(busy)}")
    report = _report(grid, eval_name)
    log(f"report: {report}" if report else "report: no finished run yet")
    if failed:
        raise SlufitError(f"{len(failed)} run(s) failed (the reason is the last line of each run's {LOG_FILE}): "
                          + ", ".join(str(grid.out / name) for name in failed))
    return report


def _train_locked(grid: GridSpec, run: RunSpec, run_dir: Path, lock: RunLock, tag: str, train_fn: TrainFn,
                  accelerate_config: Path | None, lock_timeout: float, log: Callable[[str], None]) -> None:
    """Train (or resume) one run whose lock this worker holds."""
    state = run_state(run_dir)  # again, under the lock: another worker may have finished it meanwhile
    if state == "done":
        log(f"{tag}: done, skipped")
        return
    resume = state == "partial"
    config = write_run_files(grid, run, run_dir, config_file=accelerate_config is not None and not resume)
    took = lock.took_over
    log_event(run_dir, "train", state=state, took_over=None if took is None else asdict(took))
    log(f"{tag}: {'resuming' if resume else 'training'}"
        + (f" (took over the stale lock of {took.host}:{took.pid})" if took else ""))
    start, interval = time.monotonic(), heartbeat_interval(lock_timeout)
    try:
        if accelerate_config is None:
            # Lost lock (this worker stalled past the timeout and another took the run over): stop training.
            with lock.heartbeat(interval, _stop_main_thread):
                source = None if resume or not getattr(train_fn, "warm_start", False) else text_stage_source(grid, run)
                if source is not None:
                    train_fn(config, resume, warm_start=source)
                else:
                    train_fn(config, resume)
        else:
            _launch(train_command(run_dir, resume, accelerate_config), lock, interval)
    except BaseException as err:
        if lock.lost:  # the log is the new holder's now
            raise _lost(run_dir, lock_timeout) from None
        if isinstance(err, Exception):
            # A bug keeps its traceback in the log; a SlufitError's message says it all.
            trace = None if isinstance(err, SlufitError) else traceback.format_exc()
            log_event(run_dir, "failed", reason=f"{type(err).__name__}: {err}", traceback=trace)
        else:
            log_event(run_dir, "stopped", reason=f"{type(err).__name__}: {err}")
        raise
    if lock.lost:
        raise _lost(run_dir, lock_timeout)
    if run_state(run_dir) != "done":
        log_event(run_dir, "stopped", reason="no summary.json (done)")
        raise SlufitError(f"{run_dir}: training returned without writing summary.json (done)")
    log_event(run_dir, "done", seconds=round(time.monotonic() - start, 1))
    log(f"{tag}: finished in {time.monotonic() - start:.0f} s")


def _lost(run_dir: Path, lock_timeout: float) -> SlufitError:
    return SlufitError(f"{run_dir}: another worker took this run over (this worker's heartbeat stalled for more "
                       f"than {lock_timeout:g} s); stopped")


def _launch(command: list[str], lock: RunLock, interval: float) -> None:
    """Run `accelerate launch ... slufit train` and wait, heartbeating; stop it if the lock is lost."""
    # accelerate's launcher of this very environment, whatever `accelerate` on PATH is.
    argv = [sys.executable, "-m", "accelerate.commands.launch", *command[2:]]
    child = subprocess.Popen(argv)
    try:
        with lock.heartbeat(interval, child.terminate):
            code = child.wait()
    finally:
        if child.poll() is None:  # interrupted (Ctrl-C, SIGTERM): stop the training with us
            child.terminate()
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
    if code != 0 and not lock.lost:
        raise SlufitError(f"`{shlex.join(command)}` exited with status {code}")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (scancel, a Slurm time limit or preemption) stops a worker like Ctrl-C: its lock is
    released at once, so a requeued task resumes the run from its checkpoint instead of waiting for
    the lock to go stale."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_main_thread() -> None:
    """KeyboardInterrupt in the main thread, at once: a real signal (our SIGTERM handler) ends even a
    blocking call; without that handler (run_grid outside the main thread), at its next Python line."""
    if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
    else:
        _thread.interrupt_main()


def _finished(grid_dir: Path) -> set[str]:
    return {d.name for d in grid_dir.iterdir() if d.is_dir() and run_state(d) == "done"}


def _report(grid: GridSpec, eval_name: str | None) -> Path | None:
    """Build the report; again if a run finished meanwhile (another worker), so that the last report
    written, by whichever worker ends last, holds every finished run."""
    while True:
        before = _finished(grid.out)
        if not before:
            return None
        report = build_report(grid.out, eval_name=eval_name or grid.report_eval,
                              reference_scheme=grid.reference_scheme)
        if _finished(grid.out) == before:
            return report
