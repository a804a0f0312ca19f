"""Moderator sessions are sealed with real AES-GCM: only the web tier that holds the secret
can read one, any change to the cookie voids it, and it ends on time. Web settings refuse
values that would silently misbehave."""

from __future__ import annotations

import base64

import pytest

from service.config import load_web_settings
from service.web.security import SESSION_SECONDS, SessionBox, same_token
from tests.support import run_cli

SECRET = "x" * 40


def test_a_sealed_session_opens_with_the_same_secret_only() -> None:
    cookie, session = SessionBox(SECRET).seal("hg_moderator-key", now=1000.0)
    assert "hg_moderator-key" not in cookie
    assert "moderator" not in base64.urlsafe_b64decode(cookie).decode("latin-1")
    opened = SessionBox(SECRET).open(cookie, now=1001.0)  # another replica, same secret
    assert opened == session and opened.moderator_key == "hg_moderator-key"
    assert SessionBox("y" * 40).open(cookie, now=1001.0) is None
    assert SessionBox("").open(cookie, now=1001.0) is None  # a random secret per process


def test_tampered_garbled_or_expired_sessions_are_refused() -> None:
    box = SessionBox(SECRET)
    cookie, _ = box.seal("key", now=1000.0)
    raw = bytearray(base64.urlsafe_b64decode(cookie))
    raw[-1] ^= 1
    assert box.open(base64.urlsafe_b64encode(bytes(raw)).decode(), now=1001.0) is None
    for garbage in ("", "AAAA", "not base64 !", "A" * 200):
        assert box.open(garbage, now=1001.0) is None
    assert box.open(cookie, now=1000.0 + SESSION_SECONDS - 1) is not None
    assert box.open(cookie, now=1000.0 + SESSION_SECONDS + 1) is None


def test_each_session_gets_its_own_csrf_token() -> None:
    box = SessionBox(SECRET)
    first, second = box.seal("key")[1], box.seal("key")[1]
    assert first.csrf != second.csrf and len(first.csrf) >= 32
    assert same_token(first.csrf, first.csrf)
    assert not same_token(first.csrf, second.csrf)
    assert not same_token("", "") and not same_token(None, first.csrf)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"web_port": 70000}, "web_port"),
        ({"web_cookie_secure": 2}, "web_cookie_secure"),
        ({"web_content_url": "javascript:alert(1)//{ref}"}, "web_content_url"),
        ({"web_content_url": "https://forum.example/mod"}, "web_content_url"),
        ({"web_session_secret": "short"}, "web_session_secret"),
        ({"web_tls": 2}, "web_tls must"),
        ({"web_tls_cert": "web.pem"}, "web_tls_cert and web_tls_key"),
    ],
)
def test_web_settings_refuse_bad_values(overrides: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_web_settings(overrides, environ={})


def test_web_settings_read_flags_then_environment_then_defaults() -> None:
    environ = {"HASHGUARD_WEB_PORT": "9000", "HASHGUARD_WEB_SUBMITTER_KEY": "hg_s"}
    settings = load_web_settings({"web_port": 9100, "web_target": None}, environ)
    assert settings.web_port == 9100
    assert settings.web_submitter_key == "hg_s"
    assert settings.web_target == "127.0.0.1:50051"


@pytest.mark.slow
def test_web_refuses_to_start_with_an_unreadable_tls_file(tmp_path) -> None:
    missing = tmp_path / "service-ca.pem"
    result = run_cli("web", "--web-port", "0", "--web-tls-ca", str(missing), check=False)
    assert result.returncode == 1
    assert f"cannot read the CA file (--web-tls-ca) '{missing}'" in result.stderr
    assert "Traceback" not in result.stderr
