import subprocess
import sys

from slufit.cli import COMMANDS


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "slufit.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert f"    {name} " in out or f"    {name}\n" in out, name
