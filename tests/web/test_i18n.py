"""Language choice and the completeness of the English and Korean strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from waiting_room.web import i18n
from waiting_room.web.i18n import LANGUAGES, STRINGS, js_strings, page_context, pick_language, strings_for


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("ko", "ko"),
        ("ko-KR", "ko"),
        ("KO-kr,ko;q=0.9", "ko"),
        ("en-US,en;q=0.9", "en"),
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
        ("en;q=0.5, ko;q=0.8", "ko"),
        ("ko;q=0.1, en;q=0.2", "en"),
        ("fr-FR,fr;q=0.9,ko;q=0.3", "ko"),
        ("fr, de", "en"),
        ("ko;q=0, en;q=0.1", "en"),
        ("en;q=0, ko;q=0.1", "ko"),
        ("en;q=0, *", "ko"),
        ("*", "en"),
        ("ja;q=1.0, ko;q=0.5", "ko"),
        ("ko;q=abc, en;q=0.3", "en"),
        ("ko;q=2, en", "en"),
        ("ko;q=1.000", "ko"),
        ("<script>,ko", "ko"),
        (";;;,,,", "en"),
        ("en;q=0", "en"),
        ("x" * 10_000, "en"),
        ("en;q=0.9," * 1000 + "ko", "en"),
    ],
)
def test_accept_language(header: str | None, expected: str) -> None:
    assert pick_language(header, None) == expected


@pytest.mark.parametrize(
    ("override", "header", "expected"),
    [
        ("ko", "en-US,en;q=0.9", "ko"),
        ("en", "ko-KR", "en"),
        ("KO", None, "ko"),
        ("ko-KR", None, "ko"),
        ("fr", "ko", "ko"),
        ("", "ko", "ko"),
        (None, "ko", "ko"),
        ("../../etc", None, "en"),
        ("zz", None, "en"),
    ],
)
def test_override_wins_when_valid(override: str | None, header: str | None, expected: str) -> None:
    assert pick_language(header, override) == expected


def test_every_language_has_exactly_the_same_keys() -> None:
    assert set(STRINGS) == set(LANGUAGES)
    english = set(STRINGS["en"])
    for lang in LANGUAGES:
        assert set(STRINGS[lang]) == english, lang


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_match_english(lang: str) -> None:
    for key, text in STRINGS["en"].items():
        assert i18n.placeholders(STRINGS[lang][key]) == i18n.placeholders(text), (lang, key)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_strings_are_non_empty_and_trimmed(lang: str) -> None:
    for key, text in STRINGS[lang].items():
        assert text and text == text.strip(), (lang, key)
        assert "<" not in text and ">" not in text, (lang, key)


def test_korean_is_actually_korean() -> None:
    hangul = [key for key, text in STRINGS["ko"].items() if any("\uac00" <= ch <= "\ud7a3" for ch in text)]
    assert len(hangul) == len(STRINGS["ko"])


def test_numbers_use_placeholders() -> None:
    en = STRINGS["en"]
    assert i18n.placeholders(en["js_position"]) == {"position"}
    assert i18n.placeholders(en["js_eta_minutes"]) == {"minutes"}
    assert i18n.placeholders(en["js_conn_reconnecting"]) == {"seconds"}
    assert STRINGS["ko"]["js_position"] == "대기 순번 {position}번"
    assert en["js_position"].format_map({"position": 3}) == "You are number 3 in line"


def test_js_strings_is_the_js_subset_without_prefix() -> None:
    for lang in LANGUAGES:
        subset = js_strings(lang)
        expected = {k.removeprefix("js_"): v for k, v in STRINGS[lang].items() if k.startswith("js_")}
        assert subset == expected
        assert {"position", "eta_minutes", "eta_less_minute", "conn_reconnecting", "retry_now"} <= set(subset)


def test_strings_for_unknown_language_is_english_and_a_copy() -> None:
    assert strings_for("xx") == STRINGS["en"]
    copy = strings_for("ko")
    copy["site_name"] = "changed"
    assert STRINGS["ko"]["site_name"] != "changed"


def test_page_context() -> None:
    ctx = page_context("ko")
    assert ctx["lang"] == "ko"
    assert ctx["t"] == STRINGS["ko"]
    assert ctx["js_strings"] == js_strings("ko")
    assert page_context("nope")["lang"] == "en"


ROOT = Path(__file__).resolve().parents[2]


def test_every_string_the_templates_use_exists() -> None:
    used: set[str] = set()
    for name in ("base", "index", "error", "waiting", "order"):
        template = ROOT / "templates" / f"{name}.html"
        used |= set(re.findall(r"\bt\.(\w+)\b(?!\()", template.read_text(encoding="utf-8")))
    used |= {f"order_{kind}_{part}" for kind in ("used", "expired", "invalid") for part in ("title", "text")}
    used |= {f"status_{status}" for status in ("open", "paused", "sold_out", "closed")}
    assert used, "no template found"
    assert used <= set(STRINGS["en"]), sorted(used - set(STRINGS["en"]))


def test_every_string_the_script_uses_exists() -> None:
    script = (ROOT / "static" / "waiting.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\bT\.(\w+)", script))
    used |= set(re.findall(r'\b(?:fmt|finish|scheduleRetry)\("(\w+)"', script))
    used |= set(re.findall(r'\blabel: "(\w+)"', script))
    used |= {"expired", "removed", "redeemed", "sold_out", "closed"}  # looked up by state name
    assert len(used) > 20
    for lang in LANGUAGES:
        assert used <= set(js_strings(lang)), sorted(used - set(js_strings(lang)))


def test_script_holds_no_user_visible_text() -> None:
    script = (ROOT / "static" / "waiting.js").read_text(encoding="utf-8")
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    literals = set(re.findall(r'"([^"\\\n]*)"', code)) | set(re.findall(r"`([^`]*)`", code))
    # single words such as "paused" are also protocol values; sentences are not
    known = {text for lang in LANGUAGES for text in STRINGS[lang].values() if " " in text}
    assert not literals & known
    sentences = [text for text in literals if re.search(r"\b[A-Z][a-z']+ [a-z]+", text)]
    assert sentences == []
