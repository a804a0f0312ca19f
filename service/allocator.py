"""glibc's allocator, tuned for a long-running server with many threads.

Left alone, glibc gives busy threads arenas of their own (up to 8 per core) and keeps
what they free for reuse. The numpy temporaries of index searches and image decodes
come in every size, so freed blocks leave holes that later requests fill only in part,
and a server's resident set creeps up for as long as it runs. Fewer arenas and a
periodic `malloc_trim`, which hands whole free pages back to the kernel, keep it flat at
no cost to the hot path; fixing the mmap threshold instead (glibc's other knob) made
every image check slower. Measured side by side in docs/BENCHMARKS.md ("Soak").
Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading

M_ARENA_MAX = -8  # from glibc's <malloc.h>

log = logging.getLogger("hashguard.allocator")


def _glibc() -> ctypes.CDLL | None:
    return ctypes.CDLL(None) if platform.libc_ver()[0] == "glibc" else None


def cap_arenas(arena_max: int) -> bool:
    """At most `arena_max` arenas (0 or an operator's MALLOC_ARENA_MAX: left as is).
    Call before starting threads: arenas that exist stay."""
    libc = _glibc()
    if libc is None or arena_max <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    if libc.mallopt(M_ARENA_MAX, arena_max) != 1:
        raise ValueError(f"glibc refused an arena cap of {arena_max}")
    return True


class Trimmer:
    """Calls `malloc_trim(0)` every `interval` seconds in a daemon thread."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        libc = _glibc()
        if libc is None or self.interval <= 0:
            return False
        trim = libc.malloc_trim

        def run() -> None:
            while not self._stop.wait(self.interval):
                trim(0)

        self._thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
