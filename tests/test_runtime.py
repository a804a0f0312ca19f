"""A Runtime's gauges are its own: two runtimes in one process (two stores, two lists)
each report their own list sizes, pending hits and change-log position, and neither
overwrites the other's, while the process's counters are shared by both."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from service.config import Settings
from service.domain import Decision, HashValue, Principal, Role
from service.metrics import replica_registry
from service.runtime import Runtime
from service.signals.pdq import PDQ
from service.store.sqlite import SQLiteStore
from service.usecases.cases import Cases
from service.usecases.check import Checks

OPERATOR = Principal("op", Role.OPERATOR)
SUBMITTER = Principal("sub", Role.SUBMITTER)


def pdq(seed: int) -> HashValue:
    value = np.random.default_rng(seed).integers(0, 256, 32, dtype=np.uint8).tobytes()
    return HashValue(PDQ, value, 100)


def test_two_runtimes_in_one_process_keep_their_own_gauges(tmp_path: Path) -> None:
    first_store, second_store = SQLiteStore(tmp_path / "first"), SQLiteStore(tmp_path / "second")
    try:
        first_store.import_entries([pdq(i) for i in range(3)], True, 1.0)
        second_store.import_entries([pdq(i) for i in range(100, 105)], False, 1.0)
        first, second = Runtime(first_store, Settings()), Runtime(second_store, Settings())
        first_metrics = replica_registry(first.metrics)
        second_metrics = replica_registry(second.metrics)

        def sample(registry: object, name: str, labels: dict[str, str] | None = None) -> float:
            value = registry.get_sample_value(name, labels or {})  # type: ignore[attr-defined]
            assert value is not None, name
            return float(value)

        pdq_entries = ("hashguard_index_entries", {"algorithm": "pdq"})
        assert sample(first_metrics, *pdq_entries) == 3
        assert sample(second_metrics, *pdq_entries) == 5

        # A pending entry matched on the second runtime queues a hit in its store only.
        review = Checks(second).check_upload(OPERATOR, None, [pdq(100)], "upload")
        assert review.decision is Decision.REVIEW and review.hit_id
        assert sample(second_metrics, "hashguard_pending_hits") == 1
        assert sample(first_metrics, "hashguard_pending_hits") == 0
        blocked = Checks(first).check_upload(OPERATOR, None, [pdq(0)], "upload")
        assert blocked.decision is Decision.BLOCK

        # A case on the first runtime grows its list and, once followed, its seq.
        before = sample(first_metrics, "hashguard_replica_applied_seq")
        second_seq = sample(second_metrics, "hashguard_replica_applied_seq")
        Cases(first).submit_case(SUBMITTER, [pdq(7)])
        first.follower.catch_up()
        assert sample(first_metrics, *pdq_entries) == 4
        assert sample(second_metrics, *pdq_entries) == 5
        assert sample(first_metrics, "hashguard_replica_applied_seq") > before
        assert sample(second_metrics, "hashguard_replica_applied_seq") == second_seq

        # The process's counters are one set, served by both registries alike.
        for decision in ("review", "block"):
            labels = {"decision": decision}
            counted = sample(first_metrics, "hashguard_decisions_total", labels)
            assert counted >= 1
            assert sample(second_metrics, "hashguard_decisions_total", labels) == counted
    finally:
        first_store.close()
        second_store.close()


def _big_tracked_objects(at_least: int) -> set[int]:
    """ids of the objects the garbage collector walks that hold `at_least` references."""
    return {id(o) for o in gc.get_objects() if len(gc.get_referents(o)) >= at_least}


def test_a_loaded_list_gives_the_garbage_collector_nothing_per_entry(tmp_path: Path) -> None:
    """Every full collection walks each tracked container's references: a per-entry dict
    the collector tracks (one holding enum members did) made each one take about 0.2 s
    at 1 M entries, a pause for every call in flight (issue 19). Loaded from the store,
    added by a case and vetted, the list's per-entry state stays out of its sight."""
    entries = 30_000
    store = SQLiteStore(tmp_path / "data")
    try:
        store.import_entries([pdq(i) for i in range(entries // 2)], True, 1.0)
        store.import_entries([pdq(i) for i in range(entries // 2, entries)], False, 1.0)
        before = _big_tracked_objects(entries)
        runtime = Runtime(store, Settings())
        Cases(runtime).submit_case(SUBMITTER, [pdq(entries + 1)])
        runtime.follower.catch_up()
        runtime.matcher.vet({1: 0, 2: 3})
        assert runtime.matcher.size(PDQ) == entries + 1
        blocked = Checks(runtime).check_upload(OPERATOR, None, [pdq(0)], "u")
        assert blocked.decision is Decision.BLOCK
        assert _big_tracked_objects(entries) - before == set()
        runtime.close()
    finally:
        store.close()
