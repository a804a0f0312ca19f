"""The one place that builds a replica's parts and wires them together: the store it is
given, the in-memory list (matcher, one index per algorithm) loaded from a snapshot or
the store, the change-log follower and snapshot writer, the API-key cache, the limits,
this replica's metrics, and two thread pools: one for store calls and key reads, one for
CPU work (image checks, batch searches) shared fairly between tenants, so image bombs
cannot starve another tenant's key look-ups. The use cases
(service/usecases) run on a Runtime; the servers (service/api) run a Runtime's use cases.

Order of work for every change: commit to the store first (with its change-log row),
then apply it to this replica's matcher at once (`follower.apply_local`), so nothing the
caller was told is done can be lost by a crash and the caller reads its own write. Other
replicas apply it through their followers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from service import metrics
from service.access.failures import PeerFailures
from service.access.fairness import FairShare
from service.access.limits import Limits
from service.access.principals import Authenticator
from service.config import Settings, parse_peer_rate, parse_rate_limits
from service.domain import HitState, Principal, Role
from service.errors import QuotaExceeded
from service.matcher import Matcher
from service.policy import Thresholds
from service.replica.follower import Follower
from service.replica.snapshot import SnapshotWriter
from service.replica.startup import LoadedList, load_matcher
from service.signals.registry import SIGNALS
from service.store import Store

log = logging.getLogger("hashguard.runtime")

P = ParamSpec("P")
T = TypeVar("T")


def load_list(store: Store, settings: Settings, snapshots: Path | None) -> LoadedList:
    """The list as the snapshot in `snapshots` (when one checks out) or the store holds it."""
    matcher = Matcher(Thresholds.from_settings(settings))
    seq, source = load_matcher(store, matcher, snapshots)
    return LoadedList(matcher, seq, source)


class Runtime:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        snapshots: Path | None = None,
        loaded: LoadedList | None = None,
    ) -> None:
        """Load the list (from the index snapshot in `snapshots` when one checks out,
        else from the store), or take the one `loaded` already holds, and catch up with
        the change log. `start_background` then keeps the list current in the background."""
        self.store = store
        self.settings = settings
        if loaded is None:
            loaded = load_list(store, settings, snapshots)
        self.matcher = loaded.matcher
        seq, self.loaded_from = loaded.seq, loaded.source
        self._loaded_seq = seq if self.loaded_from == "snapshot" else 0
        self.follower = Follower(store, self.matcher, seq, settings.follow_interval)
        self.snapshots: SnapshotWriter | None = None
        if snapshots is not None and settings.snapshot_interval > 0:
            on_disk = seq if self.loaded_from == "snapshot" else -1
            self.snapshots = SnapshotWriter(store, snapshots, settings.snapshot_interval, on_disk)
        self.follower.catch_up()
        self.keys = Authenticator(store, settings.key_cache_seconds)
        self.peer_failures = PeerFailures(parse_peer_rate(settings.auth_failures_per_peer))
        self.limits = Limits(
            parse_rate_limits(settings.rate_limits),
            settings.max_stream_items,
            settings.decode_budget_mib * 2**20,
        )
        self._pending_hits = 0.0
        self.metrics = metrics.ReplicaCollector(
            metrics.ReplicaState(
                index_sizes=lambda: {s.name: self.matcher.size(s) for s in SIGNALS},
                index_stats=self.matcher.index_stats,
                pending_hits=self.count_pending_hits,
                lag_seconds=self.follower.lag_seconds,
                lag_changes=lambda: self.follower.lag_changes,
                applied_seq=lambda: self.follower.applied_seq,
                snapshot_seq=self._snapshot_seq,
            )
        )
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="grpc")
        self.check_pool = ThreadPoolExecutor(
            max_workers=settings.check_workers, thread_name_prefix="check"
        )
        self.fair = FairShare(
            settings.check_workers, settings.check_workers_per_tenant, settings.check_queue_seconds
        )
        self._warn_single_tenant_vetting()

    def _warn_single_tenant_vetting(self) -> None:
        """--vet-tenants 1 lets one platform's moderators vet for every platform: fine
        for one platform, worth a word when moderator keys of several tenants exist."""
        if self.settings.vet_tenants != 1:
            return
        tenants = {
            k.tenant
            for k in self.store.list_api_keys()
            if k.role is Role.MODERATOR and k.revoked_at is None
        }
        if len(tenants) > 1:
            log.warning(
                "moderator keys of %d tenants exist and --vet-tenants is 1: one tenant's "
                "confirmation makes an entry block for all; consider --vet-tenants 2 "
                "(docs/SECURITY.md, Hardening decisions)",
                len(tenants),
            )

    async def blocking(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `function` in the pool, off the event loop: store I/O, image decodes."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: function(*args, **kwargs))

    async def cpu_work(
        self, principal: Principal, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `function` in the check pool when the caller's tenant gets its turn
        (service.access.fairness). A call abandoned while its work runs returns at once,
        but the thread keeps its turn until the work is done, so abandoned work never
        lets more run than there are threads."""
        try:
            await self.fair.acquire(principal)
        except QuotaExceeded as exc:
            raise self.limits.refused(principal, exc) from None
        loop = asyncio.get_running_loop()
        try:
            running = self.check_pool.submit(function, *args, **kwargs)
        except BaseException:
            self.fair.release(principal)
            raise

        def done(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone
                loop.call_soon_threadsafe(self.fair.release, principal)

        running.add_done_callback(done)
        return await asyncio.wrap_future(running)

    def start_background(self) -> None:
        """Follow the change log and keep the index snapshot fresh, in threads."""
        self.follower.start()
        if self.snapshots is not None:
            self.snapshots.start()

    def stop_background(self) -> None:
        self.follower.stop()
        if self.snapshots is not None:
            self.snapshots.stop()
            self.snapshots.write_at_shutdown()

    def close(self) -> None:
        """Finish the pool's work, then close the store."""
        self.check_pool.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def count_pending_hits(self) -> float:
        """Pending hits in the shared store (every replica's), counted at each scrape;
        the last count while the store cannot be reached."""
        try:
            self._pending_hits = float(self.store.count_hits(HitState.PENDING))
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("cannot count pending hits: %s", exc)
        return self._pending_hits

    def _snapshot_seq(self) -> int:
        """The change seq the snapshot on disk covers, as far as this replica knows."""
        if self.snapshots is not None and self.snapshots.seq >= 0:
            return self.snapshots.seq
        return self._loaded_seq
