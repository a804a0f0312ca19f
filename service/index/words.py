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


def words_to_hashes(words: np.ndarray) -> np.ndarray:
    """The inverse of hashes_to_words: (n, w) uint64 -> (n, 8 * w) uint8."""
    return np.ascontiguousarray(words, dtype=np.uint64).astype(">u8").view(np.uint8)


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


def scan(
    words: np.ndarray, alive: np.ndarray, qword: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blocked linear scan: (rows, int32 distances) of live rows within `radius`."""
    found_rows: list[np.ndarray] = []
    found_dist: list[np.ndarray] = []
    for start in range(0, len(words), SCAN_BLOCK_ROWS):
        distances = row_distances(words[start : start + SCAN_BLOCK_ROWS], qword)
        rows = np.flatnonzero(distances <= radius)
        if rows.size:
            rows = rows[alive[start + rows]]
            found_rows.append(start + rows)
            found_dist.append(distances[rows].astype(np.int32))
    if not found_rows:
        return np.empty(0, dtype=np.intp), EMPTY_DISTANCES
    return np.concatenate(found_rows), np.concatenate(found_dist)
