"""Versioned schema migrations: numbered .sql files applied in order, once each."""

from __future__ import annotations

import re
from importlib import resources

from service.errors import Conflict

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """(version, sql) for every migration shipped for `dialect`, in order."""
    folder = resources.files("service.store") / "migrations" / dialect
    found: list[tuple[int, str]] = []
    for item in folder.iterdir():
        match = _NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


def check_not_newer(current: int, known: int) -> None:
    """Refuse to touch a database written by a newer HashGuard."""
    if current > known:
        raise Conflict(
            f"the database schema is version {current}, newer than this HashGuard knows "
            f"({known}); upgrade HashGuard instead of running an older one against it"
        )
