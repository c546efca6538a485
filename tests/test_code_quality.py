"""The checks we hold ourselves to, run with the suite so nobody lands code that fails them."""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    """Every module a file imports (top-level or not), by full name."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


PACKAGE = ROOT / "waiting_room"
FLOORS = [
    # (files, prefixes they must not import, why)
    (sorted((PACKAGE / "core").glob("*.py")), ("redis", "starlette", "waiting_room.store", "waiting_room.web"), "pure"),
    ([PACKAGE / "web" / "hub.py", PACKAGE / "web" / "rooms.py"], ("redis", "waiting_room.store"), "no Redis"),
    ([PACKAGE / "web" / "metrics.py"], ("waiting_room.promoter",), "health reports come through the store"),
    (
        sorted((PACKAGE / "gate").glob("*.py")),
        ("redis", "starlette", "waiting_room.store", "waiting_room.web", "waiting_room.cli", "waiting_room.settings"),
        "the gate runs inside someone else's app: core, PyJWT and httpx only",
    ),
]


@pytest.mark.parametrize(("files", "forbidden", "why"), FLOORS, ids=[f[2] for f in FLOORS])
def test_the_floors_keep_their_imports(files: list[Path], forbidden: tuple[str, ...], why: str) -> None:
    assert files
    for path in files:
        bad = {name for name in _imports(path) if name.startswith(forbidden)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)} ({why})"
