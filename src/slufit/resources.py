"""The configs that ship inside the package, and `slufit configs` to list them and copy them out.

Run configs (configs/tiny/, a family's replication configs), grids (configs/grids/, the demo's
among them), launcher configs (configs/accelerate/) and the Slurm template live in
`slufit/configs/` and are installed with the package, so `slufit demo` and
`slufit train --config configs/tiny/mix.yaml` work from any folder after a plain
`pip install slufit`. (A source checkout's top-level `configs` links to the same folder.)

`resolve_config` is how every `--config` is read: a file that exists is used as it is; a path that
does not exist but names a packaged config (`configs/tiny/mix.yaml` or `tiny/mix.yaml`) is the
packaged one. To edit one, copy it out first (`slufit configs cp tiny/mix.yaml my_mix.yaml`), as
torchtune's `tune cp` does: the installed copy is the package's, not the user's.
"""

from __future__ import annotations

import argparse
import shutil
from importlib.resources import files
from pathlib import Path

from slufit.errors import SlufitError

SUFFIXES = (".yaml", ".sbatch")


def configs_root() -> Path:
    """The packaged configs folder (a real folder: slufit is never imported from a zip)."""
    return Path(str(files("slufit") / "configs"))


def packaged_configs() -> list[str]:
    """Every packaged config, as a name relative to the configs folder (`tiny/mix.yaml`)."""
    root = configs_root()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def packaged_config(name: str | Path) -> Path | None:
    """The packaged file that `name` (`tiny/mix.yaml` or `configs/tiny/mix.yaml`) names, or None."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        return None
    if parts[0] == "configs":
        parts = parts[1:]
    path = configs_root().joinpath(*parts) if parts else None
    return path if path is not None and path.is_file() else None


def resolve_config(path: str | Path) -> Path:
    """`path` when that file exists, else the packaged config it names; SlufitError when neither."""
    path = Path(path)
    if path.is_file():
        return path
    found = packaged_config(path)
    if found is not None:
        return found
    raise SlufitError(f"{path}: no such config file, and no packaged config of that name "
                      f"(`slufit configs list` shows them)")


# ---- `slufit configs`

def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="configs_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the packaged configs (run, grid, launcher, Slurm)")
    listing.add_argument("prefix", nargs="?", default="", help="only those under this folder, e.g. tiny")
    copy = sub.add_parser("cp", help="copy a packaged config (or a folder of them) out for editing")
    copy.add_argument("name", help="e.g. tiny/mix.yaml, grids/demo-mono.yaml, or a folder such as tiny")
    copy.add_argument("dest", type=Path, help="destination file or folder")


def run(args: argparse.Namespace) -> int:
    if args.configs_command == "list":
        prefix = args.prefix.strip("/").removeprefix("configs").strip("/")
        names = [n for n in packaged_configs() if not prefix or n.startswith(prefix + "/") or n == prefix]
        if not names:
            raise SlufitError(f"no packaged config under {args.prefix!r}")
        print(f"packaged configs in {configs_root()}:")
        for name in names:
            print(f"  {name}")
        return 0
    return copy_out(args.name, args.dest)


def copy_out(name: str, dest: Path) -> int:
    """Copy one packaged config, or a folder of them, to `dest`; never overwrites a file."""
    source = packaged_config(name)
    stripped = Path(name).parts[1:] if Path(name).parts[:1] == ("configs",) else Path(name).parts
    folder = configs_root().joinpath(*stripped) if stripped else None
    if source is None and (folder is None or not folder.is_dir()):
        raise SlufitError(f"{name}: no packaged config or folder of that name (`slufit configs list` shows them)")
    if source is not None:
        target = dest / source.name if dest.is_dir() else dest
        pairs = [(source, target)]
    else:
        target = dest
        pairs = [(f, dest / f.relative_to(folder)) for f in sorted(folder.rglob("*")) if f.suffix in SUFFIXES]
    existing = [str(t) for _, t in pairs if t.exists()]
    if existing:
        raise SlufitError(f"{existing[0]}: already exists; not overwritten (choose another destination)")
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    print(f"copied {len(pairs)} config(s) to {target}")
    return 0
