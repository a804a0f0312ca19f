"""Follow the store's change log, so this replica's in-memory list converges with every
other replica's (docs/DEPLOY.md, "How replicas converge").

Catch-up by sequence number is the truth: every round reads the entries changed after
the last applied seq and applies their current state. PostgreSQL's LISTEN/NOTIFY only
wakes the loop early; SQLite is polled. A missed notification, a dropped connection or
a restarted database therefore only delays a change until the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from service.domain import EntryRow
from service.matcher import Matcher
from service.store import EntryLog

log = logging.getLogger("hashguard.follower")
_MAX_BACKOFF = 5.0
_WAIT_SLICE = 0.5


class Follower:
    def __init__(
        self,
        store: EntryLog,
        matcher: Matcher,
        applied_seq: int,
        interval: float,
    ) -> None:
        self.store = store
        self.matcher = matcher
        self.applied_seq = applied_seq
        self.interval = interval
        # Held while reading a page of changes and applying it, and while applying this
        # replica's own writes, so a page read before a local write is never applied
        # after it (which could bring back an entry just withdrawn here).
        self._lock = threading.Lock()
        self._behind_since: float | None = None
        self._last_current = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported_rewind = False
        self.lag_changes = 0  # change-log seqs seen but not applied yet (a gauge reads it)

    def lag_seconds(self) -> float:
        behind_since = self._behind_since
        return 0.0 if behind_since is None else max(0.0, time.time() - behind_since)

    # -- applying -------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every change committed so far; returns how many entry rows it applied."""
        applied = 0
        with self._lock:
            start = self.applied_seq
            head = self.store.change_head(start)
            self.lag_changes = head.seq - start
            if head.seq > start:
                if self._behind_since is None:
                    self._behind_since = head.oldest_unapplied_at or time.time()
                for batch in self.store.changed_entries(start, head.seq):
                    self.matcher.apply(batch)
                    applied += len(batch)
                self.applied_seq = head.seq
            elif head.seq < start and not self._reported_rewind:
                self._reported_rewind = True  # once, not at every poll
                log.error(
                    "the store's change log ends at %d but this replica applied up to %d: "
                    "the database was replaced or restored; restart this replica",
                    head.seq,
                    start,
                )
            self._behind_since = None
            self._last_current = time.time()
        self.lag_changes = 0
        return applied

    def apply_local(self, rows: Sequence[EntryRow]) -> None:
        """Apply a change this replica just committed, so its caller reads its own write
        at once; the follower applies it again later, which changes nothing."""
        with self._lock:
            self.matcher.apply(rows)

    def vet_local(self, distances: dict[int, int]) -> None:
        """Entries this replica's resolution just vetted (or whose vet distance shrank),
        with the distance each confirmation vouched for."""
        with self._lock:
            self.matcher.vet(distances)

    # -- the background loop --------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.catch_up()
            except Exception as exc:
                failures += 1
                if self._behind_since is None:
                    self._behind_since = self._last_current
                if failures == 1 or failures % 20 == 0:
                    log.warning("cannot follow the change log (attempt %d): %s", failures, exc)
                self._stop.wait(min(_MAX_BACKOFF, 0.1 * 2**failures))
                continue
            if failures:
                log.info("following the change log again after %d failed attempts", failures)
                failures = 0
            self._wait()

    def _wait(self) -> None:
        """Until the next catch-up: `interval` seconds, or less when the store signals a
        commit. Waits in short slices so that stop() is prompt."""
        deadline = time.monotonic() + self.interval
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if not self.store.signals_changes:
                self._stop.wait(left)
                return
            try:
                if self.store.wait_for_change(min(left, _WAIT_SLICE)):
                    return
            except Exception as exc:  # a store's wait must not end the loop
                log.warning("waiting for changes failed: %s", exc)
                self._stop.wait(min(left, _WAIT_SLICE))
