"""Process settings from the environment: defaults, parsing, refusals, and the hidden admin token."""

from __future__ import annotations

from pathlib import Path

import pytest

from waiting_room.settings import DEFAULT_PUBLIC_URL, Settings, SettingsError


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None
    assert settings.signing_key_path is None
    assert settings.admin_token == ""
    assert settings.tick_ms == 500 and settings.tick_seconds == 0.5
    assert settings.public_url == DEFAULT_PUBLIC_URL == "http://127.0.0.1:8000"
    assert settings.allowed_origins == {"http://127.0.0.1:8000"}
    assert settings.data_dir == Path(".waiting-room")
    assert settings.trusted_proxies == ("127.0.0.1",)


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "WR_REDIS_URL": "redis://127.0.0.1:6390/0",
            "WR_SIGNING_KEY": "/etc/wr/key.pem",
            "WR_ADMIN_TOKEN": "t0ken",
            "WR_TICK_MS": "100",
            "WR_PUBLIC_URL": "https://wr.example",
            "WR_ALLOWED_ORIGINS": "https://shop.example",
            "WR_DATA_DIR": "/var/lib/wr",
            "WR_VERIFY_KEYS": "/etc/wr/old.pem, /etc/wr/older.pub.pem,",
            "WR_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,::1",
            "WR_REDIS_MIN_REPLICAS": "1",
        }
    )
    assert settings == Settings(
        redis_url="redis://127.0.0.1:6390/0",
        signing_key_path=Path("/etc/wr/key.pem"),
        admin_token="t0ken",
        tick_ms=100,
        public_url="https://wr.example",
        allowed_origins=frozenset({"https://shop.example"}),
        data_dir=Path("/var/lib/wr"),
        verify_key_paths=(Path("/etc/wr/old.pem"), Path("/etc/wr/older.pub.pem")),
        trusted_proxies=("10.0.0.0/8", "192.168.1.7", "::1"),
        min_replicas=1,
    )


@pytest.mark.parametrize("replicas", ["-1", "one", "17", "1.5"])
def test_a_bad_min_replicas_is_refused(replicas: str) -> None:
    with pytest.raises(SettingsError, match="WR_REDIS_MIN_REPLICAS"):
        Settings.from_env({"WR_REDIS_MIN_REPLICAS": replicas})


@pytest.mark.parametrize(("value", "expected"), [("", ()), ("*", ("*",)), (" fd00::/8 ,", ("fd00::/8",))])
def test_trusted_proxies(value: str, expected: tuple[str, ...]) -> None:
    assert Settings.from_env({"WR_TRUSTED_PROXIES": value}).trusted_proxies == expected


@pytest.mark.parametrize("value", ["lb.internal", "10.0.0.0/33", "10.0.0.1;", "1.2.3.4.5"])
def test_a_bad_trusted_proxy_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="WR_TRUSTED_PROXIES"):
        Settings.from_env({"WR_TRUSTED_PROXIES": value})


def test_templates_dir_must_be_a_folder(tmp_path: Path) -> None:
    assert Settings.from_env({"WR_TEMPLATES_DIR": str(tmp_path)}).templates_dir == tmp_path
    assert Settings.from_env({"WR_TEMPLATES_DIR": ""}).templates_dir is None
    with pytest.raises(SettingsError, match="WR_TEMPLATES_DIR"):
        Settings.from_env({"WR_TEMPLATES_DIR": str(tmp_path / "missing")})


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WR_TICK_MS", "250")
    monkeypatch.setenv("WR_PUBLIC_URL", "http://127.0.0.1:9123")
    monkeypatch.delenv("WR_ALLOWED_ORIGINS", raising=False)
    settings = Settings.from_env()
    assert settings.tick_ms == 250 and settings.allowed_origins == {"http://127.0.0.1:9123"}


def test_empty_values_mean_unset() -> None:
    settings = Settings.from_env({"WR_REDIS_URL": "", "WR_SIGNING_KEY": "", "WR_ALLOWED_ORIGINS": " , ,"})
    assert settings.redis_url is None and settings.signing_key_path is None
    assert settings.allowed_origins == {"http://127.0.0.1:8000"}


def test_allowed_origins_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "WR_ALLOWED_ORIGINS": " https://a.example/ ,http://b.example:8080,, https://a.example",
            "WR_PUBLIC_URL": "https://wr.example",
        }
    )
    assert settings.allowed_origins == {"https://a.example", "http://b.example:8080"}


@pytest.mark.parametrize(
    ("public_url", "stored", "origin"),
    [
        ("https://wr.example", "https://wr.example", "https://wr.example"),
        ("https://wr.example/", "https://wr.example", "https://wr.example"),
        ("http://127.0.0.1:9000/queue/", "http://127.0.0.1:9000/queue", "http://127.0.0.1:9000"),
        ("https://user@wr.example:8443/x?y#z", "https://user@wr.example:8443/x?y#z", "https://user@wr.example:8443"),
    ],
)
def test_default_origin_comes_from_the_public_url(public_url: str, stored: str, origin: str) -> None:
    settings = Settings.from_env({"WR_PUBLIC_URL": public_url})
    assert settings.public_url == stored
    assert settings.allowed_origins == {origin}


@pytest.mark.parametrize(
    "public_url", ["", "/", "wr.example", "localhost:8000", "127.0.0.1:8000", "ftp://wr.example", "http://", "https:/x"]
)
def test_a_bad_public_url_is_refused(public_url: str) -> None:
    with pytest.raises(SettingsError, match="WR_PUBLIC_URL"):
        Settings.from_env({"WR_PUBLIC_URL": public_url})


@pytest.mark.parametrize("tick", ["", "abc", "0.5", "500ms", "9", "0", "-500", "10001", "1e3"])
def test_a_bad_tick_is_refused(tick: str) -> None:
    with pytest.raises(SettingsError, match="WR_TICK_MS"):
        Settings.from_env({"WR_TICK_MS": tick})


@pytest.mark.parametrize(("tick", "expected"), [("10", 10), ("10000", 10000), (" 750 ", 750)])
def test_tick_bounds(tick: str, expected: int) -> None:
    assert Settings.from_env({"WR_TICK_MS": tick}).tick_ms == expected


def test_the_admin_token_stays_out_of_repr() -> None:
    secret = "s3cr3t-admin-token-4f9a"
    settings = Settings.from_env({"WR_ADMIN_TOKEN": secret})
    assert settings.admin_token == secret
    assert secret not in repr(settings) and secret not in str(settings)
    assert "admin_token" not in repr(settings)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("https://a.example", True),
        ("https://a.example/", True),
        ("http://b.example:8080", True),
        ("http://a.example", False),
        ("https://a.example:443", False),
        ("https://evil.example", False),
        ("https://a.example.evil.example", False),
        ("null", False),
        ("", False),
    ],
)
def test_origin_allowed(origin: str | None, allowed: bool) -> None:
    settings = Settings.from_env({"WR_ALLOWED_ORIGINS": "https://a.example,http://b.example:8080"})
    assert settings.origin_allowed(origin) is allowed


def test_web_workers_and_trusted_proxies() -> None:
    settings = Settings.from_env({"WR_WEB_WORKERS": "4", "WR_TRUSTED_PROXIES": " 10.0.0.7/8, ::1 ,192.168.1.1"})
    assert settings.web_workers == 4
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1", "192.168.1.1")
    defaults = Settings.from_env({})
    assert (defaults.web_workers, defaults.trusted_proxies) == (1, ("127.0.0.1",))
    # normalised: uvicorn would take a network with host bits set for a literal name
    assert Settings.from_env({"WR_TRUSTED_PROXIES": "10.1.2.3/16"}).trusted_proxies == ("10.1.0.0/16",)


@pytest.mark.parametrize("workers", ["two", "0", "-1", "65", "1.5"])
def test_bad_web_workers_are_refused(workers: str) -> None:
    with pytest.raises(SettingsError, match="WR_WEB_WORKERS"):
        Settings.from_env({"WR_WEB_WORKERS": workers})
