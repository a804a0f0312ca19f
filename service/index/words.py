"""Bit-packed hash words: the one layout every Hamming index here searches.

A hash arrives as canonical bytes (the hex string's byte order). It is stored as
big-endian uint64 words, so word k holds hex digits 16k..16k+15 and bit 0 of the hash
is the most significant bit of word 0; chunk keys for multi-index hashing are read off
the same bit numbering.
"""

from __future__ import annotations

import numpy as np

EMPTY_IDS = np.empty(0, dtype=np.int64)
EMPTY_DISTANCES = np.empty(0, dtype=np.int32)
SUPPORTED_BITS = (64, 256)


def check_bits(bits: int) -> None:
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be 64 or 256, got {bits}")


def hashes_to_words(hashes: np.ndarray, bits: int) -> np.ndarray:
    """(n, bits // 8) uint8 canonical bytes -> (n, bits // 64) uint64 words, row-major."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
    if hashes.ndim != 2 or hashes.shape[1] != bits // 8:
        raise ValueError(f"hashes must have shape (n, {bits // 8}), got {hashes.shape}")
    return hashes.view(">u8").astype(np.uint64)


def chunk_keys(words: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits [start, start + width) of every row as a uint32 key (width <= 32)."""
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << width) - 1)
    if offset + width <= 64:
        keys = (words[:, word] >> np.uint64(64 - offset - width)) & mask
    else:  # the chunk straddles two words
        low_bits = offset + width - 64
        high = words[:, word] << np.uint64(low_bits)
        keys = (high | (words[:, word + 1] >> np.uint64(64 - low_bits))) & mask
    return keys.astype(np.uint32)


def row_distances(rows: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Hamming distance between paired (n, w) uint64 rows, as uint16."""
    counts = np.bitwise_count(rows ^ queries)
    total: np.ndarray = counts[:, 0].astype(np.uint16)
    for k in range(1, counts.shape[1]):
        total += counts[:, k]
    return total


SCAN_BLOCK_ROWS = 1 << 15  # rows per step: keeps the temporaries in cache
_ALL_256 = 0x40404040  # four per-word counts of 64: the one sum a byte cannot hold


def scan(
    words: np.ndarray, alive: np.ndarray, qword: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blocked linear scan: (rows, int32 distances) of live rows within `radius`.

    Works on the flat word stream so every numpy loop is long and contiguous (a
    broadcast over 4-word rows runs 2-3x slower). For 4-word hashes the four per-word
    popcounts of a row are one uint32; multiplying by 0x01010101 adds them into the top
    byte, exact up to 255 (a partial sum never exceeds 192, so no carry crosses a byte).
    """
    n_rows, n_words = words.shape
    flat = np.ascontiguousarray(words).reshape(-1)
    query = np.tile(qword, min(n_rows, SCAN_BLOCK_ROWS))
    found_rows: list[np.ndarray] = []
    found_dist: list[np.ndarray] = []
    for start in range(0, n_rows, SCAN_BLOCK_ROWS):
        stop = min(n_rows, start + SCAN_BLOCK_ROWS)
        counts = np.bitwise_count(
            flat[start * n_words : stop * n_words] ^ query[: (stop - start) * n_words]
        )
        if n_words == 1:
            sums = counts
        else:
            packed = counts.view(np.uint32)
            sums = (packed * np.uint32(0x01010101)) >> np.uint32(24)
        rows = np.flatnonzero(sums <= radius)
        if rows.size:
            distances = sums[rows].astype(np.int32)
            if n_words > 1:
                distances[packed[rows] == _ALL_256] = 256
            keep = alive[start + rows] & (distances <= radius)
            found_rows.append(start + rows[keep])
            found_dist.append(distances[keep])
    if not found_rows:
        return np.empty(0, dtype=np.intp), EMPTY_DISTANCES
    return np.concatenate(found_rows), np.concatenate(found_dist)
