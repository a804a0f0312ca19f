"""Argument checks the store interface runs once, in its public methods, for every
backend. A failed check is INVALID_ARGUMENT, never an `assert` (which `python -O` drops)."""

from __future__ import annotations

from service.errors import InvalidInput


def require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidInput(message)


def not_negative(name: str, value: float) -> None:
    require(value >= 0, f"{name} must not be negative (got {value})")


def positive(name: str, value: int) -> None:
    require(value >= 1, f"{name} must be at least 1 (got {value})")
