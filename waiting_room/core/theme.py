"""An event's accent colour made readable: pure colour arithmetic (WCAG 2 contrast), no I/O.

The accent is used as text (links, the position number) on the page's
backgrounds and as the background of buttons, in light and in dark mode.
So for each mode it is moved towards black (light) or white (dark), by the
least amount, until it reaches AA contrast (4.5:1) with every background of
that mode; the text on it is whichever of the mode's light and dark inks
reads better, which by construction also reaches 4.5:1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AA = 4.5
HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")

# the backgrounds of static/app.css that the accent sits on, per mode
LIGHT_BACKGROUNDS = ("#ffffff", "#f4f6f8")
DARK_BACKGROUNDS = ("#1a1f26", "#101317")
LIGHT_INK, DARK_INK = "#ffffff", "#101317"

RGB = tuple[float, float, float]


def parse(color: str) -> RGB:
    match = HEX.fullmatch(color)
    if match is None:
        raise ValueError(f"not a #rrggbb colour: {color!r}")
    digits = match.group(1)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


def to_hex(rgb: RGB) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(color: str) -> float:
    """WCAG 2 relative luminance."""

    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = parse(color)
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(color: str, toward: str, amount: float) -> str:
    start, end = parse(color), parse(toward)
    r, g, b = (s + (e - s) * amount for s, e in zip(start, end, strict=True))
    return to_hex((r, g, b))


def readable_on(color: str, backgrounds: tuple[str, ...], toward: str) -> str:
    """`color`, moved towards `toward` by the least step (of 1 %) that gives AA on every background."""
    for step in range(101):
        candidate = mix(color, toward, step / 100)
        if all(contrast(candidate, bg) >= AA for bg in backgrounds):
            return candidate
    return toward


def text_on(color: str) -> str:
    """The ink (light or dark) that reads better on `color`."""
    return max((LIGHT_INK, DARK_INK), key=lambda ink: contrast(ink, color))


@dataclass(frozen=True)
class Theme:
    light_accent: str
    light_on_accent: str
    dark_accent: str
    dark_on_accent: str

    @classmethod
    def from_accent(cls, accent: str) -> Theme:
        light = readable_on(to_hex(parse(accent)), LIGHT_BACKGROUNDS, "#000000")
        dark = readable_on(to_hex(parse(accent)), DARK_BACKGROUNDS, "#ffffff")
        return cls(light, text_on(light), dark, text_on(dark))

    def css(self) -> str:
        """A stylesheet setting the page's accent variables (served as a file: the CSP allows no inline style)."""

        def rule(accent: str, on_accent: str) -> str:
            return f":root {{ --accent: {accent}; --on-accent: {on_accent}; --info-line: {accent}; }}"

        return (
            "/* an event's accent, made readable (WCAG AA) in light and dark */\n"
            f"{rule(self.light_accent, self.light_on_accent)}\n"
            "@media (prefers-color-scheme: dark) {\n"
            f"  {rule(self.dark_accent, self.dark_on_accent)}\n"
            "}\n"
        )
