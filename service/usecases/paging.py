"""Page sizes and the opaque page tokens of ListHits and ListDisputedEntries."""

from __future__ import annotations

import base64
import binascii

from service.errors import InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_limit(page_size: int) -> int:
    if page_size < 0:
        raise InvalidInput("page_size must not be negative")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(seq: int, kind: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode()


def decode_page_token(token: str, kind: str) -> int:
    try:
        prefix, seq = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix != kind:
            raise ValueError(prefix)
        value = int(seq)
        if not 0 <= value < 2**63:  # beyond a row number (SQLite cannot even bind it)
            raise ValueError(seq)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("page_token is not one this server issued") from None
