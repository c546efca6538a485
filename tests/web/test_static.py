"""The pages' static files keep one palette and one countdown clock."""

from __future__ import annotations

import re

from waiting_room.web.paths import STATIC, TEMPLATES


def _defined(css: str) -> set[str]:
    return set(re.findall(r"(--[\w-]+)\s*:", css))


def test_one_palette_defines_every_colour_the_stylesheets_use() -> None:
    palette = (STATIC / "palette.css").read_text()
    for name in ("app.css", "admin.css"):
        css = (STATIC / name).read_text()
        assert not _defined(css), f"{name} defines its own colours; they belong in palette.css"
        missing = set(re.findall(r"var\((--[\w-]+)\)", css)) - _defined(palette)
        assert not missing, f"{name} uses colours palette.css does not define: {sorted(missing)}"


def test_every_page_loads_the_palette_through_base_html() -> None:
    assert 'href="/static/palette.css"' in (TEMPLATES / "base.html").read_text()
    for template in TEMPLATES.glob("*.html"):
        if template.name != "base.html":
            assert '{% extends "base.html" %}' in template.read_text(), f"{template.name} does not extend base.html"


def test_one_countdown_clock_for_the_page_scripts() -> None:
    scripts = {path.name: path.read_text() for path in STATIC.glob("*.js")}
    defining = [name for name, text in scripts.items() if re.search(r"function clock\b|wrClock\s*=", text)]
    assert defining == ["clock.js"]
