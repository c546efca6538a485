"""Where the templates and static files are: inside the package when installed
from a wheel, at the top of the source tree in a checkout or editable install."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(packaged: str, source: str) -> Path:
    inside = _HERE / packaged
    return inside if inside.is_dir() else _HERE.parent / source


TEMPLATES = _find("_templates", "templates")
STATIC = _find("_static", "static")
