"""Hamming and exact-match indexes behind one small interface.

`HammingIndex(bits)` is the public entry point (the service and the benchmarks use it):
exact radius search over 64- or 256-bit hashes, sub-linear through multi-index hashing.
"""

from service.index.exact import ExactIndex
from service.index.hamming import HammingIndex

__all__ = ["ExactIndex", "HammingIndex"]
