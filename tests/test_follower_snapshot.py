"""The change-log follower and index snapshots on the embedded SQLite store: imports
into a running server are matched live, a snapshot start gives the same list as a full
load, and a snapshot that cannot be trusted falls back to the store."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from service.config import Settings
from service.domain import EntryState, HashValue, Principal, Role, Verdict
from service.replica.snapshot import POINTER, snapshot_dir, write_snapshot
from service.runtime import Runtime
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.phash import PHASH
from service.signals.registry import SIGNALS
from service.signals.vpdq import VPDQ
from service.signals.vpdq_frames import FrameHash, pack
from service.store.sqlite import SQLiteStore
from service.usecases.cases import Cases
from service.usecases.check import Checks
from service.usecases.review import Review
from tests.support import ServerProcess, Stubs, add_key, bearer, run_cli

OPERATOR = Principal("op", Role.OPERATOR)
SUBMITTER = Principal("sub", Role.SUBMITTER)


GONE_MD5 = hashlib.md5(b"a withdrawn file").digest()


def pdq(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, 32, dtype=np.uint8).tobytes()


@pytest.mark.slow
def test_an_import_into_a_running_server_is_matched_without_a_restart(tmp_path: Path) -> None:
    operator = add_key(tmp_path, "operator", "op")
    server = ServerProcess(tmp_path).start()
    value = pdq(1)
    request = pb.CheckUploadRequest(
        hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=value, quality=100)]
    )
    try:
        with server.channel() as channel:
            match = Stubs(channel).match
            assert match.CheckUpload(request, metadata=bearer(operator)).decision == (
                pb.DECISION_ALLOW
            )
            listing = tmp_path / "list.txt"
            listing.write_text(f"pdq {value.hex()}\npdq {pdq(2).hex()}\n")
            run_cli("import", str(listing), "--data-dir", str(tmp_path), "--vetted")
            deadline = time.monotonic() + 10
            while match.CheckUpload(request, metadata=bearer(operator)).decision != (
                pb.DECISION_BLOCK
            ):
                assert time.monotonic() < deadline, "the import never reached the server"
                time.sleep(0.05)
    finally:
        assert server.stop() == 0


def _matches(runtime: Runtime, value: bytes) -> list[tuple[int, EntryState]]:
    result = Checks(runtime).check_upload(OPERATOR, None, [HashValue(PDQ, value, 100)], "")
    return [(m.entry_id, m.entry_state) for m in result.matches]


def _store_with_list(data: Path) -> SQLiteStore:
    store = SQLiteStore(data)
    store.import_entries(
        [HashValue(PDQ, pdq(i)) for i in range(200)]
        + [HashValue(MD5, bytes([i]) * 16) for i in range(20)],
        True,
        1.0,
    )
    store.import_entries([HashValue(PHASH, bytes([i]) * 8) for i in range(30)], False, 2.0)
    return store


def test_a_snapshot_start_matches_like_a_full_load_and_catches_up(tmp_path: Path) -> None:
    store = _store_with_list(tmp_path)
    settings = Settings(data_dir=str(tmp_path))
    written = write_snapshot(store, snapshot_dir(tmp_path))
    assert written.entries == 250
    # Changes after the snapshot: a new case, and a withdrawal of a listed hash's case.
    new_case = Cases(Runtime(store, settings)).submit_case(SUBMITTER, [HashValue(PDQ, pdq(1000))])
    cases = Cases(Runtime(store, settings))
    gone = cases.submit_case(SUBMITTER, [HashValue(PDQ, pdq(1001))])
    cases.withdraw_case(gone.case_id, gone.case_token)

    full = Runtime(store, settings)
    fast = Runtime(store, settings, snapshot_dir(tmp_path))
    assert (full.loaded_from, fast.loaded_from) == ("store", "snapshot")
    assert fast.follower.applied_seq == full.follower.applied_seq
    for algorithm in SIGNALS:
        assert fast.matcher.size(algorithm) == full.matcher.size(algorithm)
    for value in (pdq(0), pdq(199), pdq(1000), pdq(1001), pdq(5000)):
        assert _matches(fast, value) == _matches(full, value)
    assert _matches(fast, pdq(1000)) and not _matches(fast, pdq(1001))
    assert new_case.entry_count == 1
    md5 = [HashValue(MD5, bytes([3]) * 16)]
    assert Checks(fast).check_upload(OPERATOR, None, md5, "").decision.value == "block"
    store.close()


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "other store", "ahead of store"])
def test_a_snapshot_that_cannot_be_trusted_falls_back_to_the_store(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store_with_list(tmp_path / "data")
    directory = snapshot_dir(tmp_path / "data")
    write_snapshot(store, directory)
    pointer = json.loads((directory / POINTER).read_text())
    values = directory / pointer["folder"] / "pdq.values.npy"
    if damage == "flip a byte":
        raw = bytearray(values.read_bytes())
        raw[-5] ^= 0xFF
        values.write_bytes(bytes(raw))
    elif damage == "truncate":
        values.write_bytes(values.read_bytes()[:-64])
    elif damage == "other store":
        other = _store_with_list(tmp_path / "other")
        write_snapshot(other, directory)
        other.close()
    else:
        pointer["seq"] = 10_000
        (directory / POINTER).write_text(json.dumps(pointer))
    with caplog.at_level(logging.WARNING, logger="hashguard.snapshot"):
        runtime = Runtime(store, Settings(), directory)
    assert runtime.loaded_from == "store"
    assert "ignoring the index snapshot" in caplog.text
    assert runtime.matcher.size(PDQ) == 200 and _matches(runtime, pdq(7))
    store.close()


@pytest.mark.slow
def test_the_server_writes_a_snapshot_and_starts_from_it(tmp_path: Path) -> None:
    store = _store_with_list(tmp_path)
    store.close()
    first = ServerProcess(tmp_path, extra_args=["--snapshot-interval", "0.2"]).start()
    pointer = snapshot_dir(tmp_path) / POINTER
    deadline = time.monotonic() + 20
    while not pointer.exists():
        assert time.monotonic() < deadline, first.log()
        time.sleep(0.1)
    assert first.stop() == 0
    assert "from the store" in first.log()
    second = ServerProcess(tmp_path).start()
    assert (
        "from the snapshot (pdq 200, phash 30, sha256 0, md5 20, pdq-window 0, video-md5 0,"
        " video-sha256 0, vpdq 0)" in second.log()
    )
    operator = add_key(tmp_path, "operator", "op")
    run_cli("import", str(_listing(tmp_path, [pdq(300)])), "--data-dir", str(tmp_path))
    with second.channel() as channel:  # the server has applied the import
        check = pb.CheckUploadRequest(
            hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq(300), quality=100)]
        )
        deadline = time.monotonic() + 10
        while Stubs(channel).match.CheckUpload(check, metadata=bearer(operator)).decision != (
            pb.DECISION_REVIEW
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert second.stop() == 0
    assert "updated the index snapshot" in second.log()  # a clean stop brings it up to date
    store = SQLiteStore(tmp_path)
    assert json.loads(pointer.read_text())["seq"] == store.change_head(0).seq
    store.close()


def _listing(folder: Path, values: list[bytes]) -> Path:
    path = folder / "more.txt"
    path.write_text("".join(f"pdq {v.hex()}\n" for v in values))
    return path


def _snapshot_contents(directory: Path) -> dict[str, list[tuple[int, bytes, bool]]]:
    pointer = json.loads((directory / POINTER).read_text())
    folder = directory / pointer["folder"]
    contents = {}
    for name in pointer["algorithms"]:
        ids = np.load(folder / f"{name}.ids.npy")
        values = np.load(folder / f"{name}.values.npy")
        vetted = np.load(folder / f"{name}.vetted.npy")
        contents[name] = sorted(
            zip(ids.tolist(), [v.tobytes() for v in values], vetted.tolist(), strict=True)
        )
    return contents


def test_a_snapshot_rewrite_merges_the_changes_like_a_full_write(tmp_path: Path) -> None:
    store = _store_with_list(tmp_path / "data")
    directory = snapshot_dir(tmp_path / "data")
    write_snapshot(store, directory)
    runtime = Runtime(store, Settings())
    cases = Cases(runtime)
    kept = cases.submit_case(SUBMITTER, [HashValue(PDQ, pdq(2000))])
    gone = cases.submit_case(SUBMITTER, [HashValue(PDQ, pdq(2001)), HashValue(MD5, GONE_MD5)])
    hit = Checks(runtime).check_upload(OPERATOR, None, [HashValue(PHASH, bytes([4]) * 8)], "")
    Review(runtime).resolve_hit(Principal("mod", Role.MODERATOR), hit.hit_id, Verdict.CONFIRMED, "")
    cases.withdraw_case(gone.case_id, gone.case_token)
    merged = write_snapshot(store, directory)  # reads only the changes since the first
    full = write_snapshot(store, snapshot_dir(tmp_path / "full"))
    assert merged.seq == full.seq and merged.entries == full.entries == 251
    contents = _snapshot_contents(directory)
    assert contents == _snapshot_contents(snapshot_dir(tmp_path / "full"))
    values = {v for rows in contents.values() for _, v, _ in rows}
    assert pdq(2000) in values and pdq(2001) not in values and GONE_MD5 not in values
    assert (bytes([4]) * 8) in {v for _, v, vetted in contents["phash"] if vetted}
    assert len([p for p in directory.iterdir() if p.is_dir()]) == 1  # the old one is gone
    assert kept.entry_count == 1
    store.close()


def test_a_withdrawal_rewrites_the_snapshot_before_the_interval(tmp_path: Path) -> None:
    """A withdrawn hash must not wait `snapshot_interval` on disk; other changes do."""
    from service.replica.snapshot import SnapshotWriter

    store = _store_with_list(tmp_path)
    directory = snapshot_dir(tmp_path)
    writer = SnapshotWriter(store, directory, interval=3600, seq=-1)
    assert writer.write_if_due()  # no snapshot yet: written at once
    assert not writer.write_if_due()  # nothing changed
    cases = Cases(Runtime(store, Settings()))
    case = cases.submit_case(SUBMITTER, [HashValue(PDQ, pdq(4000))])
    assert not writer.write_if_due()  # a new case waits for the interval
    cases.withdraw_case(case.case_id, case.case_token)
    assert writer.write_if_due()  # a withdrawal does not
    values = {v for rows in _snapshot_contents(directory).values() for _, v, _ in rows}
    assert pdq(4000) not in values and pdq(3) in values
    store.close()


def video(seed: int, seconds: int = 8) -> bytes:
    """A vpdq value: `seconds` random frames of good quality, one a second."""
    rng = np.random.default_rng(seed)
    return pack(
        [
            FrameHash(rng.integers(0, 256, 32, np.uint8).tobytes(), 90, float(n))
            for n in range(seconds)
        ]
    )


def _video_matches(runtime: Runtime, value: bytes) -> list[tuple[int, EntryState]]:
    result = Checks(runtime).check_upload(OPERATOR, None, [HashValue(VPDQ, value)], "")
    return [(m.entry_id, m.entry_state) for m in result.matches]


def test_a_snapshot_carries_variable_length_values(tmp_path: Path) -> None:
    """Videos (vpdq values of different lengths) go through a snapshot, a merged
    snapshot (a video withdrawn, another listed since) and a start from it, matching as
    a full load does; a snapshot whose offsets do not fit the values is refused."""
    store = _store_with_list(tmp_path)
    store.import_entries([HashValue(VPDQ, video(i, 3 + i)) for i in range(20)], False, 3.0)
    settings = Settings(data_dir=str(tmp_path))
    directory = snapshot_dir(tmp_path)
    assert write_snapshot(store, directory).entries == 270
    cases = Cases(Runtime(store, settings))
    gone = cases.submit_case(SUBMITTER, [HashValue(VPDQ, video(100))])
    cases.withdraw_case(gone.case_id, gone.case_token)
    cases.submit_case(SUBMITTER, [HashValue(VPDQ, video(101, 30))])
    merged = write_snapshot(store, directory)  # the merge path: old arrays minus changes
    assert merged.arrays[VPDQ].offsets is not None and len(merged.arrays[VPDQ].ids) == 21

    full = Runtime(store, settings)
    fast = Runtime(store, settings, directory)
    assert (full.loaded_from, fast.loaded_from) == ("store", "snapshot")
    assert fast.matcher.size(VPDQ) == full.matcher.size(VPDQ) == 21
    for value in (video(0, 3), video(19, 22), video(100), video(101, 30), video(500)):
        assert _video_matches(fast, value) == _video_matches(full, value)
    assert _video_matches(fast, video(101, 30)) and not _video_matches(fast, video(100))

    pointer = json.loads((directory / POINTER).read_text())
    offsets = directory / pointer["folder"] / "vpdq.offsets.npy"
    np.save(offsets, np.load(offsets)[::-1].copy())
    pointer["files"]["vpdq.offsets.npy"]["crc32"] = zlib.crc32(np.load(offsets).tobytes())
    (directory / POINTER).write_text(json.dumps(pointer))
    assert Runtime(store, settings, directory).loaded_from == "store"
    store.close()
