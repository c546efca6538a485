"""The accent made readable: WCAG contrast arithmetic and the light and dark accents it gives."""

from __future__ import annotations

import random

import pytest

from waiting_room.core.theme import AA, DARK_BACKGROUNDS, LIGHT_BACKGROUNDS, Theme, contrast, luminance, mix, parse


def test_luminance_and_contrast_match_wcag() -> None:
    assert luminance("#000000") == 0 and luminance("#ffffff") == pytest.approx(1)
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the well-known just-too-light grey
    assert contrast("#1f5fa8", "#ffffff") == contrast("#ffffff", "#1f5fa8")


def test_mix_moves_from_one_colour_to_the_other() -> None:
    assert mix("#102030", "#000000", 0) == "#102030"
    assert mix("#102030", "#ffffff", 1) == "#ffffff"
    assert mix("#000000", "#ffffff", 0.5) == "#808080"


@pytest.mark.parametrize("bad", ["red", "#fff", "#12345g", ""])
def test_parse_refuses_what_is_not_rrggbb(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


def assert_readable(theme: Theme) -> None:
    for background in LIGHT_BACKGROUNDS:
        assert contrast(theme.light_accent, background) >= AA
    for background in DARK_BACKGROUNDS:
        assert contrast(theme.dark_accent, background) >= AA
    assert contrast(theme.light_on_accent, theme.light_accent) >= AA
    assert contrast(theme.dark_on_accent, theme.dark_accent) >= AA


def test_every_accent_comes_out_readable_in_light_and_dark() -> None:
    rng = random.Random(5)
    colours = ["#000000", "#ffffff", "#ffcc00", "#777777", "#00ff00", "#0000ff", "#ff0000"]
    colours += [f"#{rng.randrange(1 << 24):06x}" for _ in range(2000)]
    for colour in colours:
        assert_readable(Theme.from_accent(colour))


def test_a_readable_accent_is_kept_as_it_is() -> None:
    theme = Theme.from_accent("#1F5FA8")  # the built-in light accent: already AA on the light backgrounds
    assert theme.light_accent == "#1f5fa8" and theme.light_on_accent == "#ffffff"
    yellow = Theme.from_accent("#ffcc00")  # readable on dark, far too light on white
    assert yellow.dark_accent == "#ffcc00"
    assert yellow.light_accent != "#ffcc00"


def test_the_change_is_the_least_that_reaches_aa() -> None:
    """One step (1 %) less towards black would not be readable on every light background."""
    for colour in ("#ffcc00", "#22c55e", "#e11d48", "#9ca3af"):
        light = Theme.from_accent(colour).light_accent
        step = next(s for s in range(101) if mix(colour, "#000000", s / 100) == light)
        assert step > 0
        lighter = mix(colour, "#000000", (step - 1) / 100)
        assert min(contrast(lighter, bg) for bg in LIGHT_BACKGROUNDS) < AA


def test_the_stylesheet_sets_both_modes_and_nothing_else() -> None:
    theme = Theme.from_accent("#ffcc00")
    css = theme.css()
    light, dark = css.split("@media (prefers-color-scheme: dark)")
    assert f"--accent: {theme.light_accent};" in light and f"--on-accent: {theme.light_on_accent};" in light
    assert f"--accent: {theme.dark_accent};" in dark and f"--on-accent: {theme.dark_on_accent};" in dark
    assert "<" not in css and "url(" not in css
