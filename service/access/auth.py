"""API keys and case tokens: made with `secrets`, stored only as SHA-256 digests and
compared in constant time. Both are 256-bit random values, so a fast digest suffices
(there is nothing to brute-force, unlike a password)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from service.domain import Principal, Role
from service.errors import PermissionDenied, Unauthenticated

KEY_PREFIX = "hg"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def same_secret(secret: str, stored_digest: bytes) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def new_api_key() -> tuple[str, str]:
    """Returns (key_id, full key). The key id is public (it names the row); the rest is
    the secret. Format: hg_<12 hex key id>_<43 url-safe characters>."""
    key_id = secrets.token_hex(6)
    return key_id, secret_for(key_id)


def secret_for(key_id: str) -> str:
    """A fresh full key for an existing key id (rotation keeps the id and name)."""
    return f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def split_api_key(key: str) -> str:
    """The key id inside a presented key, or Unauthenticated if it is not one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or not parts[2]:
        raise Unauthenticated("API key is malformed; expected hg_<id>_<secret>")
    return parts[1]


def new_case_token() -> str:
    """Never starting with '-', which a command line (`--token -x...`) reads as an option
    (1 token in 64 did); the first character then takes 63 values instead of 64."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def require_role(principal: Principal, *roles: Role) -> None:
    """Admins may do everything; everyone else only what their role allows."""
    if principal.role is Role.ADMIN or principal.role in roles:
        return
    allowed = " or ".join(r.value for r in (*roles, Role.ADMIN))
    raise PermissionDenied(
        f"key {principal.name!r} has role {principal.role.value}; this call needs {allowed}"
    )
