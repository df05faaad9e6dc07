"""Synthesize speech for canonical examples, with a content cache, over all CPU cores.

`synthesize_examples` gives each chosen example one recording,
`out_dir/audio/<locale>/<id>-<speaker>[-snr<DB>].flac` (16 kHz mono FLAC),
and returns examples whose `recordings` list it (paths relative to `out_dir`).

Cache: clean audio is stored once under `cache_dir` (default
`out_dir/.cache/tts`) in a file named by a hash of the text, the speaker's
parameters and the espeak-ng version; output files are hard links to it (or
noisy copies). A second run therefore synthesizes nothing.

espeak-ng is not thread-safe in-process, so work is spread over processes,
each with its own engine. Audio is reproducible: a file's content depends only on
its text, speaker and the engine's version, not on the process or the order
(see slufit.speech.espeak).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
from tqdm import tqdm

from slufit.data.example import Example, Recording
from slufit.errors import SlufitError
from slufit.files import atomic_open
from slufit.speech import festival, flite
from slufit.speech.espeak import SAMPLE_RATE, engine
from slufit.speech.speakers import Speaker, speaker_for
from slufit.speech.speakers import speakers as speaker_pool

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _engine_version() -> str:
    """The bundled espeak-ng's identity for the cache key: the version of the package that ships it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        # "fresh seeded engine": audio made since each utterance has a fresh, seeded engine (reproducible).
        return f"espeakng-loader {version('espeakng-loader')}, fresh seeded engine"
    except PackageNotFoundError:
        raise SlufitError("speech synthesis needs espeak-ng: pip install 'slufit[tts]' (espeakng-loader)") from None


def cache_key(text: str, speaker: Speaker, engine_version: str) -> str:
    blob = "\n".join([engine_version, speaker.voice, str(speaker.rate), str(speaker.pitch),
                      str(speaker.pitch_range), text])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def add_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Add white Gaussian noise at `snr_db` dB below the signal's mean power (seeded: reproducible)."""
    power = float(np.mean(audio.astype(np.float64) ** 2)) if audio.size else 0.0
    noise = np.random.default_rng(seed).standard_normal(audio.shape)
    noisy = audio + np.sqrt(power / 10 ** (snr_db / 10)) * noise
    return np.clip(noisy, -1.0, 1.0).astype(np.float32)


def _write_flac(path: Path, audio: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        sf.write(handle, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def _link(source: Path, target: Path) -> None:
    """Atomically make `target` a hard link to `source` (a copy where links are not possible)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


# One task: (text, speaker, cache file, output file, snr_db or None). Runs in a worker process.
Task = tuple[str, Speaker, Path, Path, "float | None"]


def _run_task(task: Task) -> tuple[float, bool]:
    """Make one output file; returns (seconds of audio, whether espeak had to synthesize)."""
    text, speaker, cache_file, out_file, snr_db = task
    synthesized = False
    if cache_file.is_file():
        audio = None
        frames = sf.info(str(cache_file)).frames
    else:
        if speaker.voice.startswith(flite.PREFIX):  # the held-out engine
            audio = flite.synthesize(text, speaker.voice, speaker.rate)
        elif speaker.voice.startswith(festival.PREFIX):  # a second engine for unlabelled speech
            audio = festival.synthesize(text, speaker.voice, speaker.rate)
        else:
            # The seed, like the file's name, comes from the text and the speaker: reproducible anywhere.
            seed = int(cache_file.stem[:8], 16)
            audio = engine().synthesize(text, speaker.voice, speaker.rate, speaker.pitch, speaker.pitch_range, seed)
        if audio.size == 0 or not np.any(np.abs(audio) > 1e-4):
            raise SlufitError(f"{speaker.voice.partition(':')[0] if ':' in speaker.voice else 'espeak-ng'} produced "
                              f"no sound for {text!r}")
        _write_flac(cache_file, audio)
        frames, synthesized = len(audio), True
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if snr_db is None:
        _link(cache_file, out_file)
    else:
        if audio is None:
            audio, _ = sf.read(str(cache_file), dtype="float32")
        seed = (int(cache_file.stem[:8], 16) + int(round(snr_db * 1000))) % 2**32
        _write_flac(out_file, add_noise(audio, snr_db, seed))
    return frames / SAMPLE_RATE, synthesized


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise SlufitError(f"{folder}: cannot write here ({err.strerror or err})") from None


def synthesize_examples(examples: Sequence[Example], out_dir: str | os.PathLike, speakers: str = "train",
                        ids: Iterable[str] | None = None, snr_db: float | None = None, workers: int | None = None,
                        cache_dir: str | os.PathLike | None = None, progress: bool = True,
                        stats: dict | None = None) -> list[Example]:
    """Give each example (or only those in `ids`) one synthesized recording; see the module docstring.

    The chosen examples' `recordings` are replaced by the synthesized one; the others are returned
    unchanged. `stats`, if given, receives {"synthesized", "cached", "seconds"}.
    """
    pool_name = speakers  # the argument's name is the contract; the function is imported as speaker_pool
    out_dir = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else out_dir / ".cache" / "tts"
    wanted = None if ids is None else set(ids)
    if wanted is not None:
        missing = wanted - {e.id for e in examples}
        if missing:
            raise SlufitError(f"{len(missing)} id(s) to synthesize are not in the data, e.g. {sorted(missing)[0]!r}")
    chosen = [i for i, e in enumerate(examples) if wanted is None or e.id in wanted]
    for i in chosen:
        if not examples[i].text.strip():
            raise SlufitError(f"example {examples[i].id!r}: empty text, nothing to synthesize")
    pools = {loc: speaker_pool(loc, pool_name) for loc in sorted({examples[i].locale for i in chosen})}
    _check_writable(out_dir / "audio")
    _check_writable(cache)
    version = _engine_version()
    if any(s.voice.startswith(flite.PREFIX) for pool in pools.values() for s in pool):
        version = flite.version()
    if any(s.voice.startswith(festival.PREFIX) for pool in pools.values() for s in pool):
        version += " + " + festival.version()
    tasks: list[Task] = []
    relative: list[tuple[str, str]] = []
    for i in chosen:
        ex = examples[i]
        spk = speaker_for(ex.id, pools[ex.locale])
        name = _UNSAFE.sub("_", ex.id) + f"-{spk.id.rsplit('-', 1)[-1]}"
        if snr_db is not None:
            name += f"-snr{snr_db:g}"
        rel = f"audio/{ex.locale}/{name}.flac"
        tasks.append((ex.text, spk, cache / f"{cache_key(ex.text, spk, version)}.flac", out_dir / rel, snr_db))
        relative.append((rel, spk.id))
    results = _run_all(tasks, workers, progress)
    out = list(examples)
    for i, (rel, spk_id), (seconds, _) in zip(chosen, relative, results):
        out[i] = examples[i].with_recordings([Recording(rel, spk_id, seconds)])
    if stats is not None:
        stats.update(synthesized=sum(s for _, s in results), cached=sum(not s for _, s in results),
                     seconds=sum(d for d, _ in results))
    return out


def _start_method() -> str:
    """fork is fast, but forking a process that runs other threads (torch's, a progress bar's) can deadlock
    a child on a lock held by a thread that the child does not have; spawn then (about 0.5 s slower)."""
    if "torch" in sys.modules or threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    return "fork"


def _run_all(tasks: list[Task], workers: int | None, progress: bool) -> list[tuple[float, bool]]:
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    if workers == 1:
        with tqdm(total=len(tasks), desc="synthesizing", unit="utt", disable=not progress) as bar:
            results = []
            for task in tasks:
                results.append(_run_task(task))
                bar.update()
        return results
    # The pool starts before the progress bar, whose monitor thread would force spawn.
    with multiprocessing.get_context(_start_method()).Pool(workers) as pool:
        with tqdm(total=len(tasks), desc="synthesizing", unit="utt", disable=not progress) as bar:
            results = []
            for result in pool.imap(_run_task, tasks, chunksize=8):
                results.append(result)
                bar.update()
    return results
