"""Hamming and exact-match indexes behind one small interface.

`HammingIndex(bits)` is the public entry point (benchmarks use it directly); a
sub-linear multi-index variant will implement the same interface.
"""

from service.index.exact import ExactIndex
from service.index.flat import FlatHammingIndex

HammingIndex = FlatHammingIndex

__all__ = ["ExactIndex", "FlatHammingIndex", "HammingIndex"]
