"""One /metrics for `hashguard serve --processes N`: the supervisor reads each serving
process's own /metrics (loopback, a free port each) and serves their sum.

Counters, histograms and summaries add up sample by sample (same name and labels), so
`rate(hashguard_requests_total[5m])` is the whole server's. A gauge is one process's
view of shared things (the list, the change log, the store), so summing it would be
wrong: those that say how current a process is (applied seq, snapshot seq, entries)
take the least, so an alert sees the laggard; process gauges (memory, descriptors) add
up; every other gauge takes the largest (lag, buffered rows, pending hits, which every
process reads from the same store).
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger("hashguard.metrics")

_LEAST = frozenset(
    {
        "hashguard_replica_applied_seq",
        "hashguard_snapshot_seq",
        "hashguard_index_entries",
        "hashguard_tls_certificate_expiry_timestamp_seconds",
        "process_start_time_seconds",
    }
)
_SUMMED_GAUGES = ("process_resident_memory_bytes", "process_virtual_memory_bytes")
_SCRAPE_SECONDS = 5.0


def combine(texts: Iterable[str]) -> list[Metric]:
    """Several processes' exposition texts as one set of families (see the module)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            kept = families.setdefault(family.name, family)
            if kept.type != family.type:
                continue  # cannot happen between processes of one version; never mix
            samples = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in samples:
                    samples[key] = sample.value
                else:
                    samples[key] = _fold(family.type, sample.name, samples[key], sample.value)
    combined = []
    for name, family in families.items():
        out = Metric(family.name, family.documentation, family.type, family.unit)
        for (sample_name, labels), value in values[name].items():
            out.add_sample(sample_name, dict(labels), value)
        combined.append(out)
    return combined


def _fold(kind: str, sample: str, old: float, new: float) -> float:
    if sample.endswith("_created") or sample in _LEAST:
        return min(old, new)
    if kind in ("counter", "histogram", "summary", "gaugehistogram"):
        return old + new
    if kind == "gauge":
        if sample in _SUMMED_GAUGES or sample == "process_open_fds":
            return old + new
        return max(old, new)
    return old  # info, stateset, unknown: the first process's


def scrape(port: int, timeout: float = _SCRAPE_SECONDS) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text: str = response.read().decode()
        return text


@dataclass(eq=False)  # a registry keys its collectors by identity
class SummedMetrics(Collector):
    """The collector the supervisor's /metrics serves: every live process's metrics
    summed, plus how many processes serve and how many were restarted."""

    ports: dict[int, int] = field(default_factory=dict)  # pid -> its /metrics port
    restarts: int = 0

    def collect(self) -> Iterator[Metric]:
        texts = []
        for pid, port in sorted(self.ports.items()):
            try:
                texts.append(scrape(port))
            except OSError as exc:  # a process dying right now: the others still count
                log.warning("cannot read the metrics of serving process %d: %s", pid, exc)
        yield from combine(texts)
        yield from self.own(len(texts))

    def own(self, answered: int) -> Sequence[Metric]:
        serving = GaugeMetricFamily(
            "hashguard_serving_processes",
            "serving processes whose metrics are summed here (`serve --processes`)",
        )
        serving.add_metric([], answered)
        restarts = Metric(
            "hashguard_process_restarts",
            "serving processes the supervisor started again after they died",
            "counter",
        )
        restarts.add_sample("hashguard_process_restarts_total", {}, self.restarts)
        return [serving, restarts]
