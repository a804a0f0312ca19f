"""Prometheus collectors, defined once for the process (prefix hashguard_)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
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
INDEX_ENTRIES = Gauge(
    "hashguard_index_entries", "matchable list entries by algorithm", ["algorithm"]
)
PENDING_HITS = Gauge("hashguard_pending_hits", "hits waiting for a moderator")
LOW_QUALITY_PDQ = Counter(
    "hashguard_low_quality_pdq_total", "PDQ hashes not matched because their quality was low"
)
RATE_LIMITED = Counter(
    "hashguard_rate_limited_total",
    "calls refused by a rate limit, quota or size cap, by the key's role and the limit",
    ["role", "limit"],
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
REPLICA_LAG_SECONDS = Gauge(
    "hashguard_replica_lag_seconds",
    "how long this replica may have been missing changes: age of the oldest change it "
    "has not applied, or time since its last catch-up while the store cannot be reached",
)
REPLICA_LAG_CHANGES = Gauge(
    "hashguard_replica_lag_changes",
    "sequence numbers of the store's change log this replica has not applied yet",
)
REPLICA_APPLIED_SEQ = Gauge(
    "hashguard_replica_applied_seq", "the last change-log sequence number this replica applied"
)
SNAPSHOT_SEQ = Gauge(
    "hashguard_snapshot_seq", "the change-log sequence number the newest index snapshot covers"
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


class IndexStatsCollector(Collector):
    """Reads the Hamming indexes' own counters at scrape time, so the index stays free
    of Prometheus: how each query was answered (`multi_index` probes or a `scan`), rows
    still in the append buffer, and background merges."""

    def __init__(self) -> None:
        self._source: Callable[[], Mapping[str, Mapping[str, int]]] = dict

    def watch(self, source: Callable[[], Mapping[str, Mapping[str, int]]]) -> None:
        """`source()` returns {algorithm: HammingIndex.stats()}; the newest source wins."""
        self._source = source

    def collect(self) -> Iterator[Metric]:
        searches = CounterMetricFamily(
            "hashguard_index_searches",
            "Hamming index queries by how the index answered them",
            labels=["algorithm", "plan"],
        )
        buffered = GaugeMetricFamily(
            "hashguard_index_buffered_rows",
            "rows in the append buffer, scanned until the next merge",
            labels=["algorithm"],
        )
        merges = CounterMetricFamily(
            "hashguard_index_merges",
            "append-buffer merges into the indexed rows",
            labels=["algorithm"],
        )
        for algorithm, stats in self._source().items():
            for plan in ("multi_index", "scan"):
                searches.add_metric([algorithm, plan], stats.get(plan, 0))
            buffered.add_metric([algorithm], stats.get("buffered_rows", 0))
            merges.add_metric([algorithm], stats.get("merges", 0))
        yield from (searches, buffered, merges)


INDEX_STATS = IndexStatsCollector()
REGISTRY.register(INDEX_STATS)
