"""Speech-MASSIVE (Lee et al., 2024) -> canonical examples with 16 kHz recordings.

Source: a Hugging Face dataset folder (`datasets.load_from_disk`, a Dataset or a
DatasetDict of splits) or parquet files (one file, or a folder searched recursively).
Labels come from the MASSIVE fields (`scenario_str`/`intent_str` when the integer
class columns are present). Each audio array is written once, as 16 kHz mono FLAC,
to `<out folder>/audio/speech-massive/<locale>/<name>.flac` and referenced from
`recordings`; a rerun reuses files already there. Rows sharing an utterance id
become one example with several recordings.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Iterator

from slufit.data.audio import AudioError, decode_audio, duration_seconds, load_audio, write_audio
from slufit.data.example import Recording
from slufit.data.importers.common import Imported, build_example
from slufit.data.importers.massive import massive_fields
from slufit.errors import DataError

_SHARD_NAME = re.compile(r"^([A-Za-z0-9_.]+)-\d{5}-of-\d{5}\.parquet$")  # Hugging Face hub shard names



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partition", help="keep only this split/partition (e.g. train_115, validation, test)")


def _load(src: Path) -> Iterator[tuple[str, Any]]:
    """(split name, datasets.Dataset) pairs, audio left undecoded (datasets would need torchcodec).

    The split name ("train_115", "validation", ...) comes from the DatasetDict or from Hugging Face
    parquet file names (`train_115-00000-of-00001.parquet`); "" when unknown.
    """
    import datasets

    if src.is_dir() and ((src / "dataset_dict.json").is_file() or (src / "dataset_info.json").is_file()):
        loaded = datasets.load_from_disk(str(src))
        splits = list(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    else:
        files = sorted(src.rglob("*.parquet")) if src.is_dir() else [src]
        if not files or not all(f.is_file() and f.suffix == ".parquet" for f in files):
            raise DataError(f"{src}: neither a saved Hugging Face dataset nor parquet files")
        by_split: dict[str, list[str]] = {}
        for f in files:
            match = _SHARD_NAME.match(f.name)
            by_split.setdefault(match.group(1) if match else "", []).append(str(f))
        splits = [(name, datasets.Dataset.from_parquet(paths)) for name, paths in by_split.items()]
    for name, dataset in splits:
        if "audio" in dataset.features and isinstance(dataset.features["audio"], datasets.Audio):
            dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
        yield name, dataset


def _labels(row: dict[str, Any], features: Any) -> dict[str, Any]:
    """MASSIVE string labels: `*_str` columns, else class names of integer columns."""
    row = dict(row)
    for name, str_name in (("scenario", "scenario_str"), ("intent", "intent_str")):
        if row.get(str_name):
            row[name] = row[str_name]
        elif isinstance(row.get(name), int) or isinstance(row.get(f"{name}_idx"), int):
            index = row[name] if isinstance(row.get(name), int) else row[f"{name}_idx"]
            feature = features.get(name) or features.get(f"{name}_idx")
            if hasattr(feature, "int2str"):
                row[name] = feature.int2str(index)
    return row


def _recording(row: dict[str, Any], src: Path, out_dir: Path, where: str) -> Recording:
    audio = row.get("audio") or {}
    name = Path(str(row.get("path") or audio.get("path") or f"{row['id']}.flac")).stem
    target = out_dir / "audio" / "speech-massive" / str(row["locale"]) / f"{name}.flac"
    speaker = str(row.get("speaker_id") or "UNK")
    relative = target.relative_to(out_dir).as_posix()
    if not target.is_file():  # written once: a rerun keeps what is there
        if audio.get("bytes"):
            samples = decode_audio(audio["bytes"], f"{where} audio {name}")
        elif audio.get("path"):
            path = Path(audio["path"])
            samples = load_audio(path if path.is_absolute() else src / path)
        else:
            raise AudioError(f"{where}: row has no audio")
        write_audio(target, samples)
    return Recording(relative, speaker, duration_seconds(target))


def convert(src: Path, args: argparse.Namespace, out_dir: Path) -> Imported:
    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    grouped: dict[tuple[str, str], dict[str, Any]] = {}  # (partition, id) -> fields
    count, bad_audio = 0, []
    for split, dataset in _load(src):
        for index, row in enumerate(dataset):
            where = f"{src}:{split + ':' if split else ''}row {index}"
            row = _labels(row, dataset.features)
            # The split name wins: Speech-MASSIVE's few-shot split is a split, not a MASSIVE partition.
            partition = split or str(row.get("partition") or "")
            if args.partition and partition != args.partition:
                continue
            fields = massive_fields(row, where)
            entry = grouped.setdefault((partition, fields["id"]), {**fields, "recordings": [], "source": "speech-massive",
                                                                  "_where": where})
            count += 1
            try:
                entry["recordings"].append(_recording(row, src, out_dir, where).to_dict())
            except AudioError as err:
                bad_audio.append(str(err))
    if args.partition and not grouped:
        raise DataError(f"{src}: no row has partition {args.partition!r}")
    partitions: dict[str, list] = {}
    for (partition, _), fields in grouped.items():
        where = fields.pop("_where")
        partitions.setdefault(partition, []).append(build_example(fields, where))
    return Imported(partitions, count, bad_audio)
