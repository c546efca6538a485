"""The checks we hold ourselves to, run with the suite so nobody lands code that fails them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["waiting_room", "tests", "bench", "examples"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", *SOURCES], ["ruff", "format", "--check", *SOURCES], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_code_is_clean(command: list[str]) -> None:
    result = subprocess.run([_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
