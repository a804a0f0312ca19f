"""Moderator sessions and CSRF tokens.

A moderator's key lives only in an encrypted, authenticated cookie (AES-GCM under a key
derived from the web tier's session secret), HttpOnly, SameSite=Strict and Secure unless
configured off; pages never show it. Any web replica with the same secret can read the
cookie, so the tier stays stateless. Forms carry a CSRF token: console forms the one
sealed in the session, public forms the one in a separate cookie (double submit).

Signing out ends the session on the server too: its id (the random CSRF token sealed in
it) is remembered by this web process until the session would have expired, so a copy
of the cookie replayed afterwards opens nothing here. Another web process does not know
(docs/WEB.md says what that means for several pods).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SESSION_SECONDS = 8 * 3600  # one working shift
MOST_ENDED = 100_000  # ended sessions remembered; beyond, the soonest to expire go first
_AAD = b"hashguard-web-session-v1"


@dataclass(frozen=True, slots=True)
class Session:
    moderator_key: str
    csrf: str
    expires: float


class SessionBox:
    """Seals sessions into cookie values and opens them again."""

    def __init__(self, secret: str) -> None:
        raw = secret.encode() if secret else secrets.token_bytes(32)
        self._aead = AESGCM(hashlib.sha256(b"hashguard-web-session:" + raw).digest())
        self._ended: dict[str, float] = {}  # session id -> when it would have expired
        self._lock = threading.Lock()

    def end(self, session: Session, now: float | None = None) -> None:
        """Refuse this session from now on (sign-out), even if its cookie is replayed."""
        now = time.time() if now is None else now
        with self._lock:
            self._ended = {sid: exp for sid, exp in self._ended.items() if exp > now}
            self._ended[session.csrf] = session.expires
            if len(self._ended) > MOST_ENDED:
                del self._ended[min(self._ended, key=self._ended.__getitem__)]

    def seal(self, moderator_key: str, now: float | None = None) -> tuple[str, Session]:
        session = Session(
            moderator_key, new_token(), (time.time() if now is None else now) + SESSION_SECONDS
        )
        body = json.dumps({"k": session.moderator_key, "c": session.csrf, "e": session.expires})
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, body.encode(), _AAD)
        return base64.urlsafe_b64encode(sealed).decode(), session

    def open(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session in `cookie`, or None if absent, forged, tampered with or expired."""
        if not cookie:
            return None
        try:
            sealed = base64.urlsafe_b64decode(cookie.encode())
            body = json.loads(self._aead.decrypt(sealed[:12], sealed[12:], _AAD))
            session = Session(str(body["k"]), str(body["c"]), float(body["e"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None
        if session.csrf in self._ended:
            return None
        return session if session.expires > (time.time() if now is None else now) else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; absent tokens never match."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
