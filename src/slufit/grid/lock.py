"""Run-folder states and locks: any number of workers on one grid, no run trained twice, none lost.

A worker (a `slufit grid` process on any machine over a shared filesystem, or a Slurm array task)
trains a run only while it holds `RUN_DIR/lock.json`:

- Taken atomically: the lock's content is written to a temporary file, then hard-linked to
  `lock.json`. The link fails when `lock.json` exists (create-exclusive, like O_EXCL, and also
  exclusive on NFS), and a reader never sees a half-written lock.
- It holds the worker's host, pid, start time and a token; its heartbeat is the file's modification
  time, refreshed every `interval` seconds by a thread of the worker while the run trains (in the
  worker's process, or in the `accelerate launch` child it waits on). A refresh opens the lock,
  checks the token is its own and touches that same open file, so it can never refresh (or
  overwrite) a lock another worker has taken meanwhile.
- A lock whose heartbeat is older than `timeout` belongs to a dead worker (SIGKILL, out of memory,
  node failure): the next worker takes it over, and the run resumes from its last checkpoint.
  A lock taken on this very host whose process is visibly gone (no such pid, or a zombie) is
  stale at once: waiting for the heartbeat to age would only idle the next worker. (This trusts
  the hostname: two containers that share a hostname but not a pid namespace must not share a
  grid folder; a reused pid only makes the next worker wait for the timeout, as before.)
  Taking over is exclusive too: the taker first creates `lock.takeover-<stale lock's token>`,
  which only one worker can do for a given stale lock; these markers stay, as a record.
- Released (removed) when the worker stops, normally or on Ctrl-C / SIGTERM.

The holder appends what it did to `RUN_DIR/grid_log.jsonl` (one JSON line per event: `train`
with the state it started from and any takeover, `done`, `stopped`), so a run folder tells who
trained it, when, and how often.

Heartbeats are wall-clock times compared across machines: keep the timeout far above the
clocks' skew (NTP keeps a cluster within a second; the default is 10 minutes).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from slufit.files import read_json, write_json

LOCK_FILE = "lock.json"
LOG_FILE = "grid_log.jsonl"
# A lock whose heartbeat is older than this (seconds) is stale: its worker is taken for dead.
LOCK_TIMEOUT = 600.0


def run_state(run_dir: Path) -> str:
    """`done` (summary.json with done), `partial` (a checkpoint folder: resume from it) or `new`."""
    summary = run_dir / "summary.json"
    if summary.is_file() and read_json(summary).get("done"):
        return "done"
    # Any checkpoints/ folder, even one killed while its first checkpoint was written: slufit.train refuses
    # to start afresh over it, and resuming without a complete checkpoint starts from the beginning.
    if (run_dir / "checkpoints").is_dir():
        return "partial"
    return "new"


@dataclass(frozen=True)
class LockInfo:
    """What lock.json holds, and its heartbeat."""

    host: str
    pid: int
    start: float  # when the worker took the lock (Unix time)
    token: str  # unique per lock taken: tells its holder it is still its own
    heartbeat: float = 0.0  # last refresh (Unix time): the file's modification time, not part of its content

    def content(self) -> dict:
        return {"host": self.host, "pid": self.pid, "start": self.start, "token": self.token}

    def age(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat."""
        return (time.time() if now is None else now) - self.heartbeat

    def holder_gone(self) -> bool:
        """True when the lock was taken on this host and its process no longer runs."""
        return self.pid > 0 and self.host == socket.gethostname() and not _process_alive(self.pid)

    def stale(self, timeout: float, now: float | None = None) -> bool:
        return self.age(now) > timeout or self.holder_gone()

    def describe(self, timeout: float = LOCK_TIMEOUT, now: float | None = None) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.start))
        text = f"locked by {self.host}:{self.pid} since {since}"
        if self.holder_gone():
            text += f" (stale: process {self.pid} is gone; the next worker takes it over)"
        elif self.stale(timeout, now):
            text += f" (stale: heartbeat {self.age(now):.0f} s ago; the next worker takes it over)"
        return text


def _process_alive(pid: int) -> bool:
    """Whether `pid` names a running (not zombie) process of this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:  # a killed child its parent has not reaped yet still answers signal 0
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_lock(run_dir: Path) -> LockInfo | None:
    """The lock of a run folder, or None when it has none."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_open_lock(fd)
    finally:
        os.close(fd)


def _read_open_lock(fd: int) -> LockInfo:
    mtime = os.fstat(fd).st_mtime
    try:
        with os.fdopen(os.dup(fd), encoding="utf-8") as handle:
            data = json.load(handle)
        return LockInfo(str(data["host"]), int(data["pid"]), float(data["start"]), str(data["token"]), mtime)
    except (OSError, ValueError, KeyError, TypeError):
        # Not written by this module (locks appear whole): judge it by its age alone.
        return LockInfo("unknown", 0, mtime, f"unreadable-{int(mtime * 1e9)}", mtime)


def describe_state(run_dir: Path, timeout: float = LOCK_TIMEOUT) -> str:
    """done / partial / todo, with `locked by HOST:PID since T` when a worker holds the run."""
    state = run_state(run_dir)
    if state == "done":
        return "done"
    lock = read_lock(run_dir)
    word = "partial" if state == "partial" else "todo"
    return word if lock is None else f"{word}, {lock.describe(timeout)}"


def unfinished_runs(grid_dir: Path, expected: list[str] = (), timeout: float = LOCK_TIMEOUT) -> list[tuple[str, str]]:
    """(name, state) of every run of the grid that has not finished: the folders under `grid_dir` that a
    worker or `slufit grid plan` has started, and the `expected` run names (the grid's) that have none."""
    grid_dir = Path(grid_dir)
    names = set(expected)
    for child in grid_dir.iterdir() if grid_dir.is_dir() else ():
        if child.is_dir() and any((child / f).exists() for f in ("grid_run.json", "config.yaml", LOCK_FILE)):
            names.add(child.name)
    out = []
    for name in sorted(names):
        run_dir = grid_dir / name
        if not run_dir.is_dir():
            out.append((name, "not started"))
        elif run_state(run_dir) != "done":
            out.append((name, describe_state(run_dir, timeout)))
    return out


def _identity() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def log_event(run_dir: Path, event: str, **fields) -> None:
    """Append one line to RUN_DIR/grid_log.jsonl (only the lock holder writes it)."""
    line = {"event": event, "time": round(time.time(), 3), **_identity(), **fields}
    with open(Path(run_dir) / LOG_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class RunLock:
    """A lock this process holds on a run folder; `acquire` returns None when another worker holds it."""

    def __init__(self, run_dir: Path, info: LockInfo, took_over: LockInfo | None):
        self.run_dir = Path(run_dir)
        self.info = info
        self.took_over = took_over  # the stale lock this one replaced, if any
        self.lost: LockInfo | None | bool = False  # set when the lock turns out to be someone else's

    @property
    def path(self) -> Path:
        return self.run_dir / LOCK_FILE

    @classmethod
    def acquire(cls, run_dir: Path, timeout: float = LOCK_TIMEOUT) -> "RunLock | None":
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        info = LockInfo(**_identity(), start=time.time(), token=uuid.uuid4().hex)
        tmp = run_dir / f".{LOCK_FILE}.{info.token}.tmp"
        write_json(tmp, info.content())
        try:
            for _ in range(3):  # a lock released between our look and our link: look again
                try:
                    os.link(tmp, run_dir / LOCK_FILE)
                    return cls(run_dir, info, None)
                except FileExistsError:
                    pass
                held = read_lock(run_dir)
                if held is None:
                    continue
                if not held.stale(timeout):
                    return None
                try:  # only one worker can claim a given stale lock
                    fd = os.open(run_dir / f"lock.takeover-{held.token}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return None
                os.write(fd, json.dumps({**info.content(), "stale": asdict(held)}).encode())
                os.close(fd)
                os.utime(tmp)  # the heartbeat starts now
                os.replace(tmp, run_dir / LOCK_FILE)
                return cls(run_dir, info, held)
            return None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def refresh(self) -> bool:
        """Touch the heartbeat; False (and `lost` set) when the lock is no longer this process's."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self.lost = True
            return False
        try:
            current = _read_open_lock(fd)
            if current.token != self.info.token:
                self.lost = current
                return False
            os.utime(fd)  # the very file whose token was checked, even if it is replaced meanwhile
            return True
        finally:
            os.close(fd)

    def release(self) -> None:
        """Remove the lock if it is still this process's."""
        current = read_lock(self.run_dir)
        if current is not None and current.token == self.info.token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    @contextlib.contextmanager
    def heartbeat(self, interval: float, on_lost: Callable[[], None]) -> Iterator[None]:
        """Refresh the heartbeat every `interval` s in a thread while the block runs; call `on_lost` (once,
        from that thread) if another worker took the lock over meanwhile (this one stalled past the timeout)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    alive = self.refresh()
                except OSError:
                    continue  # a filesystem hiccup: try again at the next beat, the timeout is far off
                if not alive:
                    on_lost()
                    return

        thread = threading.Thread(target=beat, name=f"heartbeat {self.run_dir.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
