"""Prometheus collectors (prefix hashguard_): the process's counters, defined once, and each
replica's gauges, read from that replica at scrape time (ReplicaCollector)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "hashguard_requests_total", "gRPC calls by method and status code", ["method", "code"]
)
LATENCY = Histogram(
    "hashguard_request_duration_seconds",
    "gRPC call latency by method",
    ["method"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter("hashguard_decisions_total", "check decisions by kind", ["decision"])


@cache
def decisions(decision: str) -> Counter:
    """DECISIONS' child for one decision, looked up once (`labels()` costs about 4 us,
    once per check)."""
    return DECISIONS.labels(decision)


LOW_QUALITY_PDQ = Counter(
    "hashguard_low_quality_pdq_total", "PDQ hashes not matched because their quality was low"
)
RATE_LIMITED = Counter(
    "hashguard_rate_limited_total",
    "calls refused by a rate limit, quota or size cap, by the key's role and the limit",
    ["role", "limit"],
)
KEY_READS = Counter(
    "hashguard_key_reads_total",
    "API key records read from the store (key cache misses; known-absent ids are not read)",
)
REFUSED_SUBMISSIONS = Counter(
    "hashguard_refused_submissions_total",
    "cases refused because a hash was degenerate or repeated, by reason",
    ["reason"],
)
DISPUTED_MATCHES = Counter(
    "hashguard_disputed_matches_total",
    "checks allowed instead of reviewed because every pending entry matched was disputed",
)
# Registered only once a certificate is loaded (export_tls_expiry): a gauge registered up
# front would export 0 without TLS, and the expiry alert would fire on every replica.
TLS_CERT_EXPIRY = Gauge(
    "hashguard_tls_certificate_expiry_timestamp_seconds",
    "when the certificate the gRPC port serves expires (Unix time); absent without TLS",
    registry=None,
)


_tls_lock = threading.Lock()
_tls_registered: list[bool] = []


def export_tls_expiry(timestamp: float) -> None:
    """Set the served certificate's expiry, and export the gauge from now on."""
    TLS_CERT_EXPIRY.set(timestamp)
    with _tls_lock:
        if not _tls_registered:
            REGISTRY.register(TLS_CERT_EXPIRY)
            _tls_registered.append(True)


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What one replica's gauges read at scrape time: callables over its own matcher,
    follower, snapshot writer and store, so two replicas in one process (tests, tools)
    never overwrite each other's values."""

    index_sizes: Callable[[], Mapping[str, int]]
    index_stats: Callable[[], Mapping[str, Mapping[str, int]]]
    pending_hits: Callable[[], float]
    lag_seconds: Callable[[], float]
    lag_changes: Callable[[], int]
    applied_seq: Callable[[], int]
    snapshot_seq: Callable[[], int]


class ReplicaCollector(Collector):
    """One replica's state as gauges (and the Hamming indexes' own counters), read at
    scrape time: list sizes, pending hits, change-log lag, the snapshot's seq, and how
    each index answered (`multi_index` probes or a `scan`), rows still in its append
    buffer, background merges. The index stays free of Prometheus."""

    def __init__(self, state: ReplicaState | None = None) -> None:
        self.state = state

    def describe(self) -> Iterator[Metric]:
        """The families without samples (what /metrics can carry)."""
        return iter(_ReplicaFamilies().all())

    def collect(self) -> Iterator[Metric]:
        f = _ReplicaFamilies()
        state = self.state
        if state is not None:
            for algorithm, size in state.index_sizes().items():
                f.entries.add_metric([algorithm], size)
            for algorithm, stats in state.index_stats().items():
                for plan in ("multi_index", "scan"):
                    f.searches.add_metric([algorithm, plan], stats.get(plan, 0))
                f.buffered.add_metric([algorithm], stats.get("buffered_rows", 0))
                f.merges.add_metric([algorithm], stats.get("merges", 0))
            f.pending.add_metric([], state.pending_hits())
            f.lag_seconds.add_metric([], state.lag_seconds())
            f.lag_changes.add_metric([], state.lag_changes())
            f.applied.add_metric([], state.applied_seq())
            f.snapshot.add_metric([], state.snapshot_seq())
        return iter(f.all())


class _ReplicaFamilies:
    """A fresh set of a replica's metric families, filled at each scrape."""

    def __init__(self) -> None:
        by_algorithm = ["algorithm"]
        self.entries = GaugeMetricFamily(
            "hashguard_index_entries", "matchable list entries by algorithm", labels=by_algorithm
        )
        self.searches = CounterMetricFamily(
            "hashguard_index_searches",
            "Hamming index queries by how the index answered them",
            labels=["algorithm", "plan"],
        )
        self.buffered = GaugeMetricFamily(
            "hashguard_index_buffered_rows",
            "rows in the append buffer, scanned until the next merge",
            labels=by_algorithm,
        )
        self.merges = CounterMetricFamily(
            "hashguard_index_merges",
            "append-buffer merges into the indexed rows",
            labels=by_algorithm,
        )
        self.pending = GaugeMetricFamily("hashguard_pending_hits", "hits waiting for a moderator")
        self.lag_seconds = GaugeMetricFamily(
            "hashguard_replica_lag_seconds",
            "how long this replica may have been missing changes: age of the oldest change "
            "it has not applied, or time since its last catch-up while the store cannot be "
            "reached",
        )
        self.lag_changes = GaugeMetricFamily(
            "hashguard_replica_lag_changes",
            "sequence numbers of the store's change log this replica has not applied yet",
        )
        self.applied = GaugeMetricFamily(
            "hashguard_replica_applied_seq",
            "the last change-log sequence number this replica applied",
        )
        self.snapshot = GaugeMetricFamily(
            "hashguard_snapshot_seq",
            "the change-log sequence number the newest index snapshot covers",
        )

    def all(self) -> list[Metric]:
        return [
            self.entries,
            self.searches,
            self.buffered,
            self.merges,
            self.pending,
            self.lag_seconds,
            self.lag_changes,
            self.applied,
            self.snapshot,
        ]


class _ProcessMetrics(Collector):
    """The process-wide collectors (requests, decisions, refusals: counters that add up
    over every replica in the process) inside a replica's own registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def replica_registry(collector: ReplicaCollector) -> CollectorRegistry:
    """What a replica's /metrics serves: the process's counters and its own gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(collector)
    return registry
