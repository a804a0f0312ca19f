"""The allocator tuning `serve` applies, observed through glibc itself in child processes."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# glibc only; starts Python processes that allocate for seconds: left out by -m "not slow".
pytestmark = [
    pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only"),
    pytest.mark.slow,
]

# Eight threads allocate at once, then glibc prints one "Arena N:" block per arena.
_ARENAS = """
import ctypes, sys, threading
import numpy as np
from service.allocator import cap_arenas
print(cap_arenas(int(sys.argv[1])))
start = threading.Barrier(8)
def work():
    start.wait()
    for size in range(1000, 200_000, 997):
        np.ones(size).sum()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
sys.stdout.flush()
ctypes.CDLL(None).malloc_stats()
"""

# Fragment the heap: keep one small block in 64, free the rest. glibc keeps the freed
# pages (they sit below live blocks) until malloc_trim hands them back.
_TRIM = """
import os, sys, time
from service.allocator import Trimmer
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
blocks = [bytearray(1000) for _ in range(200_000)]
kept = blocks[::64]
del blocks
before = rss()
trimmer = Trimmer(float(sys.argv[1]))
started = trimmer.start()
time.sleep(1.0)
trimmer.stop()
print(started, before, rss())
"""


def run(program: str, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **environ},
    )


def test_arena_cap_holds_under_eight_allocating_threads() -> None:
    untuned = run(_ARENAS, "0")
    assert untuned.stdout.strip() == "False"
    assert untuned.stderr.count("Arena ") > 2  # glibc's default: an arena per contender
    tuned = run(_ARENAS, "2")
    assert tuned.stdout.strip() == "True"
    assert tuned.stderr.count("Arena ") <= 2


def test_the_operators_environment_wins() -> None:
    result = run(_ARENAS, "2", MALLOC_ARENA_MAX="3")
    assert result.stdout.strip() == "False"
    assert result.stderr.count("Arena ") <= 3


def test_trimming_hands_freed_heap_pages_back() -> None:
    started, before, after = run(_TRIM, "0.1").stdout.split()
    assert started == "True"
    assert int(before) - int(after) > 100 * 1024 * 1024  # of ~200 MiB freed
    started, before, after = run(_TRIM, "0").stdout.split()
    assert started == "False"
    assert int(before) - int(after) < 25 * 1024 * 1024
