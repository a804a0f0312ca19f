"""PEM files named by a setting, read with an error that names the setting: the server's
certificates (service.api.tls) and the clients' (service.client.tls)."""

from __future__ import annotations

from pathlib import Path


def read_pem(path: str, what: str) -> bytes:
    """The file's bytes, or an OSError that names the setting it came from."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read the {what} {path!r}: {exc.strerror}") from None
    if b"-----BEGIN" not in data:
        raise OSError(f"the {what} {path!r} is not a PEM file")
    return data
