"""The load generator's own parts, against a real server: it seeds a list with the real
CLI, starts `hashguard serve`, respects its request bound, counts status codes and
decisions, and samples the server's memory and descriptors. No timing is asserted."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.load import (
    Server,
    Soak,
    Tally,
    Workload,
    drive,
    listed_hashes,
    parse_mix,
    process_usage,
    profile_summary,
    report,
    sample_images,
    seed_data_dir,
)

ENTRIES = 2_000


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    data_dir = tmp_path_factory.mktemp("load") / "data"
    operator, submitter = seed_data_dir(data_dir, ENTRIES, seed=5)
    server = Server(data_dir).start()
    try:
        yield server, operator, submitter
    finally:
        server.stop()


def workload(server: Server, operator: str, submitter: str, **changes: object) -> Workload:
    base = {
        "target": f"127.0.0.1:{server.port}",
        "operator_key": operator,
        "submitter_key": submitter,
        "kinds": parse_mix("hash=6,image=1,submit=1,health=1"),
        "entries": ENTRIES,
        "seed": 5,
        "near": 0.5,
        "images": sample_images(0.05, count=2),
        "duration": 60.0,
        "requests": 90,
        "concurrency": 6,
        "channels": 2,
    }
    return Workload(**{**base, **changes})  # type: ignore[arg-type]


def test_mix_weights_expand_and_unknown_kinds_are_refused() -> None:
    assert Counter(parse_mix("hash=3,image=1")) == {"hash": 3, "image": 1}
    assert parse_mix("health") == ("health",)
    with pytest.raises(ValueError, match="unknown request kind 'upload'"):
        parse_mix("hash=1,upload=2")


def test_listed_hashes_are_the_same_for_the_same_seed() -> None:
    assert (listed_hashes(10, 1) == listed_hashes(10, 1)).all()
    assert not (listed_hashes(10, 1) == listed_hashes(10, 2)).all()


@pytest.mark.slow
def test_seeding_imports_the_list_once(tmp_path: Path) -> None:
    """A second run with the same size and seed reuses the data; another size reseeds."""
    data_dir = tmp_path / "data"
    first = seed_data_dir(data_dir, 50, seed=1)
    sentinel = data_dir / "sentinel"
    sentinel.touch()
    second = seed_data_dir(data_dir, 50, seed=1)
    assert sentinel.exists(), "the seeded data was thrown away and imported again"
    assert len({*first, *second}) == 4, "every run makes fresh keys"
    seed_data_dir(data_dir, 60, seed=1)
    assert not sentinel.exists() and (data_dir / "seeded-60-1").exists()


@pytest.mark.slow
def test_bounded_run_answers_every_request_ok(running: tuple[Server, str, str]) -> None:
    """90 requests of four kinds, all answered OK; near-listed hash checks BLOCK (the
    list is vetted), random ones ALLOW; the request bound is exact."""
    server, operator, submitter = running
    tally = asyncio.run(drive(workload(server, operator, submitter), seed=3))
    counted = sum(len(v) for v in tally.latencies.values())
    assert counted == 90
    assert set(tally.latencies) == {"hash", "image", "submit", "health"}
    for kind, codes in tally.codes.items():
        assert set(codes) == {"OK"}, (kind, codes)
    hash_checks = len(tally.latencies["hash"])
    assert 0 < tally.decisions["DECISION_BLOCK"] < hash_checks  # about half are near hits
    assert tally.decisions["DECISION_ALLOW"] > 0
    checks = len(tally.latencies["hash"]) + len(tally.latencies["image"])
    assert sum(tally.decisions.values()) == checks
    lines = report(tally)
    assert lines[0].split()[:3] == ["kind", "requests", "req/s"]
    assert any(line.startswith("all ") and " 90 " in line for line in lines)
    assert lines[-1].startswith("decisions: ")


@pytest.mark.slow
def test_batches_count_each_upload_as_a_check(running: tuple[Server, str, str]) -> None:
    """A batch call answers --batch-size checks: calls and checks are counted apart."""
    server, operator, submitter = running
    work = workload(
        server, operator, submitter, kinds=parse_mix("batch=1,hash=1"), requests=20, batch_size=5
    )
    tally = asyncio.run(drive(work, seed=6))
    calls = len(tally.latencies["batch"])
    assert calls + len(tally.latencies["hash"]) == 20 and calls > 0
    assert set(tally.codes["batch"]) == {"OK"}
    assert tally.checks == {"batch": 5 * calls, "hash": 20 - calls}
    assert sum(tally.decisions.values()) == tally.units() == 5 * calls + 20 - calls
    assert any(line.startswith(f"checks: {tally.units()} in 20 calls") for line in report(tally))


@pytest.mark.slow
def test_random_queries_do_not_hit_the_list(running: tuple[Server, str, str]) -> None:
    """With no near-hits asked for, random hash checks are all ALLOW: the clients' random
    stream must not replay the seeded list."""
    server, operator, submitter = running
    work = workload(server, operator, submitter, kinds=parse_mix("hash"), near=0.0, requests=40)
    tally = asyncio.run(drive(work, seed=5))  # the same seed as the list's
    assert tally.decisions == {"DECISION_ALLOW": 40}


@pytest.mark.slow
def test_errors_are_counted_by_status_code(running: tuple[Server, str, str]) -> None:
    """A wrong key is UNAUTHENTICATED for every check, and the run still completes."""
    server, _operator, submitter = running
    work = workload(
        server, "hg_bogus.key", submitter, kinds=parse_mix("hash"), requests=12, concurrency=3
    )
    tally = asyncio.run(drive(work, seed=4))
    assert tally.codes["hash"] == {"UNAUTHENTICATED": 12}
    assert "UNAUTHENTICATED 12" in report(tally)[1]


@pytest.mark.slow
def test_soak_samples_the_servers_memory_and_descriptors(
    running: tuple[Server, str, str],
) -> None:
    server, _operator, _submitter = running
    rss, fds = process_usage(server.server_pid)
    assert rss > 10 and fds > 3
    soak = Soak([server.server_pid], every=0.01)
    soak.sample_until(iter([False, False, True]))
    assert len(soak.samples) == 3
    lines = soak.report(warmup=0)
    assert lines[-1].startswith("after 0 s warm-up: RSS ")
    assert "fds" in lines[-1]


def test_tallies_from_client_processes_merge() -> None:
    a, b = Tally(elapsed=2.0), Tally(elapsed=3.0)
    a.add("hash", 0.001, "OK")
    b.add("hash", 0.002, "UNAVAILABLE")
    b.decisions["DECISION_ALLOW"] += 1
    a.merge(b)
    assert a.latencies["hash"] == [0.001, 0.002]
    assert a.codes["hash"] == {"OK": 1, "UNAVAILABLE": 1}
    assert a.elapsed == 3.0 and a.decisions == {"DECISION_ALLOW": 1}


@pytest.mark.slow
def test_profile_summary_ranks_functions_by_samples(tmp_path: Path) -> None:
    """py-spy's speedscope output, summarised: own time and time including callees."""
    profile = {
        "shared": {
            "frames": [
                {"name": "serve", "file": "/x/server.py", "line": 1},
                {"name": "check", "file": "/x/app.py", "line": 2},
                {"name": "search", "file": "/x/index.py", "line": 3},
            ]
        },
        "profiles": [
            {"samples": [[0, 1, 2], [0, 1, 2], [0, 1], [0]], "weights": [0.5, 0.5, 0.25, 0.25]}
        ],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    lines = profile_summary(path, top=2)
    assert lines[0] == "1.5 s of samples holding the GIL; top by own time:"
    assert lines[1].split() == ["66.7%", "search", "(index.py:3)"]
    assert lines[2].split() == ["16.7%", "check", "(app.py:2)"]
    assert lines[3] == "top including callees:"
    assert lines[4].split() == ["100.0%", "serve", "(server.py:1)"]
    assert lines[5].split() == ["83.3%", "check", "(app.py:2)"]


@pytest.mark.slow
def test_concurrency_sweep_drives_each_mix_at_each_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadtests.concurrency_sweep import main as sweep

    argv = ["--entries", str(ENTRIES), "--data-dir", str(tmp_path / "data")]
    argv += ["--concurrency", "1,4", "--duration", "1", "--warmup", "0", "--threads"]
    assert sweep(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["4"])]
    assert [(r[0], r[1]) for r in rows] == [
        ("1", "hash"),
        ("1", "health"),
        ("4", "hash"),
        ("4", "health"),
    ]
    assert all(r[-1] == "0" for r in rows)  # no call failed
    assert all(int(r[3].replace(",", "")) > 0 for r in rows)  # req/s
    assert out.count("hash/health") == 2
    assert "main (event loop)" in out  # the server's CPU by thread


def test_thread_cpu_names_the_main_thread() -> None:
    from loadtests.concurrency_sweep import thread_cpu

    used = thread_cpu(os.getpid())
    assert "main (event loop)" in used and all(v >= 0 for v in used.values())
