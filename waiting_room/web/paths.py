"""Where the templates and static files are: inside the package when installed
from a wheel, at the top of the source tree in a checkout or editable install."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def _find(packaged: str, source: str) -> Path:
    inside = _PACKAGE / packaged
    return inside if inside.is_dir() else _PACKAGE.parent / source


TEMPLATES = _find("_templates", "templates")
STATIC = _find("_static", "static")
