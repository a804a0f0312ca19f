"""One contract every hash type passes (service/signals): the same checks, run for each
registered type, and for a test-only type registered beside them, which shows what a
new type needs: one module (here, a class in this file), one registry line, its proto
enum value.

Checks: names resolve; values round-trip through their text form, wrong ones are
refused with a message; degenerate values are refused at submission; the index the type
asks for answers like a brute-force scan at its radius r and not at r + 1 (seeded; for a
video type, its frames at r and r + 1 bits from a listed video's);
hash lists carry it both ways, in python-threatexchange's names where it has one; and a
listed value is found by a check through a real gRPC server on loopback.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from service.api.convert import check_hash_types, hash_to_pb
from service.domain import Decision, EntryRow, EntryState, HashValue, Match, MatchPart, Query
from service.errors import InvalidInput
from service.hashlist import read_hashes, write_hashes
from service.index import ExactIndex, HammingIndex
from service.matcher import Matcher, new_index
from service.policy import Thresholds, decide
from service.signals.base import CheckOptions, IndexKind, SignalType
from service.signals.pdq import PDQ
from service.signals.registry import REGISTRY, SIGNALS, Registry, RegistryError
from service.signals.vpdq_frames import PDQ_BYTES, FrameHash, pack, unpack
from service.submission_checks import check_submission
from tests.support import ServerProcess, Stubs, add_key, bearer


class UrlMd5ForTests(SignalType):
    """Test-only: what a new type needs (here, MD5 of a URL). It takes
    python-threatexchange's name `url_md5` over from the names a list import skips with
    one line, and (for this test) lets a match ask for REVIEW at most."""

    name = "url-md5"
    proto_name = "HASH_ALGORITHM_URL_MD5"
    label = "URL MD5"
    size = 16
    index_kind = IndexKind.EXACT
    threatexchange_name = "url_md5"
    can_block = False


EXTRA = UrlMd5ForTests()
WITH_EXTRA = Registry((*SIGNALS, EXTRA))
ALL = [*SIGNALS, EXTRA]
ids = pytest.mark.parametrize("signal", ALL, ids=lambda s: s.name)
registered = pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
OPTIONS = CheckOptions(crop_matching=True, min_quality=50)


def registry_of(signal: SignalType) -> Registry:
    return WITH_EXTRA if signal is EXTRA else REGISTRY


def informative(signal: SignalType, rng: np.random.Generator, count: int = 1) -> list[bytes]:
    """Random values: about half their bits set, never degenerate. A variable-length
    type's value is 3 to 8 records; a video's frames are of good quality, a second apart."""
    if not signal.variable_length:
        return [row.tobytes() for row in rng.integers(0, 256, (count, signal.size), np.uint8)]
    return [video_value(rng, int(rng.integers(3, 9))) for _ in range(count)]


def video_value(rng: np.random.Generator, frames: int, pdqs: np.ndarray | None = None) -> bytes:
    """A vpdq value: `frames` random (or given) PDQs, quality 60-100, one a second."""
    if pdqs is None:
        pdqs = rng.integers(0, 256, (frames, PDQ_BYTES), np.uint8)
    qualities = rng.integers(60, 101, frames).tolist()
    return pack([FrameHash(pdqs[n].tobytes(), qualities[n], float(n)) for n in range(frames)])


def quality(signal: SignalType) -> int | None:
    return 90 if signal.uses_quality else None


def flipped(value: bytes, bits: int, rng: np.random.Generator) -> bytes:
    """`value` with exactly `bits` distinct bits flipped."""
    number = int.from_bytes(value, "big")
    for bit in rng.choice(len(value) * 8, size=bits, replace=False).tolist():
        number ^= 1 << bit
    return number.to_bytes(len(value), "big")


# -- the registry and the proto enum ---------------------------------------------------


def test_registry_matches_the_proto_enum() -> None:
    check_hash_types()  # what a server and the CLI run at start-up
    assert {s.proto_name for s in SIGNALS} == set(pb.HashAlgorithm.keys()) - {
        "HASH_ALGORITHM_UNSPECIFIED"
    }


def test_an_enum_value_without_a_plug_in_is_a_clear_start_up_error() -> None:
    """Adding a value to the proto enum alone must say what is missing, not KeyError."""
    names = [*pb.HashAlgorithm.keys(), "HASH_ALGORITHM_URL_MD5"]
    with pytest.raises(RegistryError, match="HASH_ALGORITHM_URL_MD5 has no hash type: add a"):
        REGISTRY.check_enum(names)
    with pytest.raises(RegistryError, match="'url-md5' names HASH_ALGORITHM_URL_MD5, which"):
        WITH_EXTRA.check_enum(pb.HashAlgorithm.keys())
    WITH_EXTRA.check_enum(names)  # the module, its registry line and its enum value: enough


def test_an_enum_value_alone_stops_the_server_saying_what_to_add(tmp_path: Path) -> None:
    """What a maintainer sees who adds HASH_ALGORITHM_URL_MD5 to the proto and
    regenerates the code before writing its plug-in: `hashguard serve` stops at start
    with the message (exit 2), not a KeyError from deep inside."""
    root = Path(__file__).resolve().parent.parent
    source = (root / "proto" / "hashguard" / "v1" / "hashguard.proto").read_text()
    edited = source.replace(
        "  HASH_ALGORITHM_VPDQ = 8;\n",
        "  HASH_ALGORITHM_VPDQ = 8;\n  HASH_ALGORITHM_URL_MD5 = 9;\n",
    )
    assert edited != source
    proto = tmp_path / "proto" / "hashguard" / "v1"
    proto.mkdir(parents=True)
    (proto / "hashguard.proto").write_text(edited)
    generated = tmp_path / "generated"
    generated.mkdir()
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(tmp_path / "proto"),
         f"--python_out={generated}", f"--grpc_python_out={generated}",
         str(proto / "hashguard.proto")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    for package in (generated / "hashguard", generated / "hashguard" / "v1"):
        (package / "__init__.py").touch()
    serve = [sys.executable, "-m", "service.cli", "serve", "--data-dir", str(tmp_path / "d")]
    result = subprocess.run(
        [*serve, "--port", "0", "--metrics-port", "0"],
        env={**os.environ, "PYTHONPATH": str(generated)},  # the regenerated code first
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "HASH_ALGORITHM_URL_MD5 has no hash type: add a module to service/signals/" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_names_claimed_twice_are_refused() -> None:
    class Clash(UrlMd5ForTests):
        name = "md5"
        proto_name = "HASH_ALGORITHM_CLASH"

    with pytest.raises(RegistryError, match="both claim the name 'md5'"):
        Registry((*SIGNALS, Clash()))


def test_a_new_type_takes_threatexchange_names_over() -> None:
    """A list import skips `url_md5` lines until a type claims the name; then that type
    reads them. A type's fallback names are its own only while no type claims them."""
    assert REGISTRY.is_threatexchange_other("url_md5") and not REGISTRY.knows("url_md5")
    assert WITH_EXTRA.parse_name("url_md5") is EXTRA
    assert not WITH_EXTRA.is_threatexchange_other("url_md5")

    class Fallback(UrlMd5ForTests):
        name = "link-md5"
        proto_name = "HASH_ALGORITHM_LINK_MD5"
        threatexchange_name = None  # type: ignore[assignment]
        threatexchange_fallbacks = ("url_md5",)

    fallback = Fallback()
    assert Registry((*SIGNALS, fallback)).parse_name("url_md5") is fallback
    assert Registry((*SIGNALS, fallback, EXTRA)).parse_name("url_md5") is EXTRA


def test_python_threatexchange_video_names_are_the_video_types() -> None:
    """Its `video_md5`, `video_sha256` and `vpdq` lines read as the video types, not as a
    photo's md5 or sha256 (which no longer fall back to them)."""
    names = {n: REGISTRY.parse_name(n).name for n in ("video_md5", "video_sha256", "vpdq")}
    assert names == {"video_md5": "video-md5", "video_sha256": "video-sha256", "vpdq": "vpdq"}
    assert not REGISTRY.is_threatexchange_other("vpdq")


@ids
def test_every_name_resolves(signal: SignalType) -> None:
    registry = registry_of(signal)
    names = [signal.name, *signal.aliases, signal.threatexchange_name]
    for name in filter(None, names):
        assert registry.parse_name(name) is signal
        assert registry.parse_name(f" {name.upper()} ") is signal
    assert registry.by_name[signal.name] is signal
    assert registry.by_proto_name(signal.proto_name) is signal
    with pytest.raises(InvalidInput, match=f"unknown hash type .*{signal.name}"):
        registry.parse_name(signal.name + "-nope")


# -- values --------------------------------------------------------------------------------


@ids
def test_values_round_trip_through_their_text_form(signal: SignalType) -> None:
    rng = np.random.default_rng(1)
    for value in informative(signal, rng, 20):
        text = signal.format(value)
        assert signal.parse(text) == value
        assert signal.parse(f"  {text.upper()}\n") == value
        assert signal.format(signal.parse(text)) == text


@ids
def test_malformed_values_are_refused_with_a_message(signal: SignalType) -> None:
    expected = (
        f"records of {signal.size} bytes, got {signal.size - 1} bytes"
        if signal.variable_length
        else f"{signal.size} bytes .{signal.size * 2} hex digits"
    )
    with pytest.raises(InvalidInput, match=expected):
        signal.parse("ab" * (signal.size - 1))
    with pytest.raises(InvalidInput, match="is not hex"):
        signal.parse("zz" * signal.size)
    with pytest.raises(InvalidInput, match="must be"):
        signal.validate(b"\x01" * (signal.size + 1))


@ids
def test_degenerate_values_are_refused_and_informative_ones_pass(signal: SignalType) -> None:
    rng = np.random.default_rng(2)
    good = HashValue(signal, informative(signal, rng)[0], quality(signal))
    check_submission([good], pdq_min_quality=50)
    for byte in (0x00, 0xFF, 0x5A):
        assert signal.degenerate(HashValue(signal, bytes([byte]) * signal.size), 50) is not None
    if not signal.variable_length:  # a video type's own rules: tests/test_video_signals.py
        sparse = bytes(signal.size - 1) + b"\x03"
        expected = "near_constant" if signal.index_kind is IndexKind.HAMMING else None
        problem = signal.degenerate(HashValue(signal, sparse), 50)
        assert (problem[0] if problem else None) == expected
    low = signal.degenerate(HashValue(signal, good.value, 49), 50)
    assert (low[0] if low else None) == ("low_quality" if signal.uses_quality else None)
    assert signal.degenerate(HashValue(signal, good.value, 50), 50) is None


# -- the index -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signal", [s for s in ALL if s.index_kind is not IndexKind.VIDEO], ids=lambda s: s.name
)
def test_index_search_equals_brute_force_at_r_and_not_r_plus_1(signal: SignalType) -> None:
    """Entries at exactly r and r + 1 bits from each query, among random ones: the
    type's index finds those within r, as a scan using the type's distance does."""
    rng = np.random.default_rng(3)
    radius = Thresholds().radius(signal)
    queries = informative(signal, rng, 12)
    values = informative(signal, rng, 1500)
    for query in queries:
        values += [flipped(query, radius, rng), flipped(query, radius + 1, rng)]
    index = new_index(signal)
    assert isinstance(index, HammingIndex | ExactIndex)
    entry_ids = np.arange(10, 10 + len(values), dtype=np.int64)
    index.add(entry_ids, np.frombuffer(b"".join(values), np.uint8).reshape(len(values), -1))
    packed = np.frombuffer(b"".join(queries), np.uint8).reshape(len(queries), -1)
    for query, (found, distances) in zip(queries, index.search(packed, radius), strict=True):
        expected = {
            int(i): signal.distance(query, v)
            for i, v in zip(entry_ids, values, strict=True)
            if signal.distance(query, v) <= radius
        }
        assert dict(zip(found.tolist(), distances.tolist(), strict=True)) == expected
        assert radius in expected.values()  # the entry at r is found, the one at r + 1 not


@pytest.mark.parametrize(
    "signal", [s for s in ALL if s.index_kind is IndexKind.VIDEO], ids=lambda s: s.name
)
def test_video_index_finds_frames_at_r_and_not_r_plus_1(signal: SignalType) -> None:
    """A video type's index (VideoList: its frames in a Hamming index): a query whose
    every frame lies exactly r bits from a listed video's matches that video as a whole,
    among 300 random videos, and at r + 1 bits matches nothing, as a brute-force scan of
    the frames says."""
    rng = np.random.default_rng(3)
    radius = Thresholds().radius(signal)
    listed = [video_value(rng, 10) for _ in range(300)]
    matcher = Matcher(Thresholds(), signals=[signal])
    matcher.add([EntryRow(n + 1, signal, v, EntryState.PENDING) for n, v in enumerate(listed)])
    target = unpack(listed[41])
    for bits, expected in ((radius, [(42, MatchPart.WHOLE)]), (radius + 1, [])):
        pdqs = np.array([np.frombuffer(flipped(f.pdq, bits, rng), np.uint8) for f in target])
        query = video_value(rng, 10, pdqs)
        near = {
            n + 1
            for n, v in enumerate(listed)
            for a in unpack(v)
            for b in unpack(query)
            if PDQ.distance(a.pdq, b.pdq) <= radius
        }
        assert near == {e for e, _ in expected}
        found = matcher.match([HashValue(signal, query)])
        assert [(m.entry_id, m.part) for m in found] == expected


@ids
def test_matcher_and_policy_treat_the_type_by_its_own_rules(signal: SignalType) -> None:
    """Through the matcher (every type alike) and the policy: a pending entry asks for
    REVIEW, a vetted one BLOCK unless the type says its matches may only ask for REVIEW."""
    rng = np.random.default_rng(4)
    value = informative(signal, rng)[0]
    matcher = Matcher(Thresholds(), signals=registry_of(signal).signals)
    matcher.add([EntryRow(1, signal, value, EntryState.PENDING)])
    found = matcher.match([HashValue(signal, value)])
    assert [(m.entry_id, m.algorithm, m.distance) for m in found] == [(1, signal, 0)]
    assert decide(found) is Decision.REVIEW
    matcher.set_state([1], EntryState.VETTED)
    vetted = matcher.match([HashValue(signal, value)])
    expected = Decision.BLOCK if signal.can_block else Decision.REVIEW
    assert decide(vetted) is expected
    assert decide(vetted, disputed={1}) is expected  # disputes concern pending entries
    matcher.remove([EntryRow(1, signal, b"", EntryState.WITHDRAWN)])
    assert matcher.match([HashValue(signal, value)]) == []


def test_a_type_may_cap_what_a_vetted_match_decides() -> None:
    match = Match(1, EXTRA, 0, EntryState.VETTED, b"\x01" * 16)
    assert decide([match]) is Decision.REVIEW
    assert decide([match, Match(2, SIGNALS[0], 0, EntryState.VETTED, b"")]) is Decision.BLOCK


# -- hash lists ----------------------------------------------------------------------------


def listed(signal: SignalType, count: int = 5) -> list[HashValue]:
    rng = np.random.default_rng(5)
    return [HashValue(signal, value) for value in informative(signal, rng, count)]


@ids
@pytest.mark.parametrize("fmt", ["plain", "csv"])
def test_hash_lists_round_trip(signal: SignalType, fmt: str) -> None:
    hashes = listed(signal)
    out = io.StringIO()
    written = write_hashes(out, hashes, fmt)
    assert written.count == len(hashes)
    unreadable = 0 if signal.threatexchange_name else len(hashes)
    assert sum(written.unreadable_by_threatexchange.values()) == unreadable
    back = list(read_hashes(io.StringIO(out.getvalue()), fmt, registry=registry_of(signal)))
    assert back == hashes


@ids
def test_threatexchange_format_writes_only_what_its_tools_read(signal: SignalType) -> None:
    hashes = listed(signal)
    out = io.StringIO()
    written = write_hashes(out, hashes, "threatexchange")
    if signal.threatexchange_name is None:
        assert out.getvalue() == "" and written.count == 0
        assert written.unreadable_by_threatexchange == Counter({signal.name: len(hashes)})
        return
    assert written.count == len(hashes)
    assert all(
        line.split()[0] == signal.threatexchange_name for line in out.getvalue().split("\n")[:-1]
    )
    registry = registry_of(signal)
    assert list(read_hashes(io.StringIO(out.getvalue()), "plain", registry=registry)) == hashes
    one_type = "".join(f"{signal.format(h.value)} 'collab' {{}}\n" for h in hashes)  # -P -s TYPE
    assert list(read_hashes(io.StringIO(one_type), "plain", signal, registry=registry)) == hashes


# -- a check through a real server ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Stubs]]:
    data_dir = tmp_path_factory.mktemp("contract")
    keys = {role: add_key(data_dir, role, role) for role in ("operator", "submitter")}
    proc = ServerProcess(data_dir).start()
    proc.keys = keys  # type: ignore[attr-defined]
    with proc.channel() as channel:
        yield proc, Stubs(channel)
    assert proc.stop() == 0, proc.log()


def query_for(signal: SignalType, value: bytes) -> HashValue:
    """What a check sends to find an entry of `signal`: the value itself, or, for a type
    that is a list entry only, the value as the type whose queries it is searched with."""
    probe = HashValue(signal, value)
    try:
        signal.check_query(probe)
        return probe
    except InvalidInput:
        for other in SIGNALS:
            if signal.derived_queries([Query(other, value)], OPTIONS):
                return HashValue(other, value, quality(other))
    raise AssertionError(f"nothing a check sends finds {signal.name} entries")


@pytest.mark.slow
@registered
def test_a_listed_value_is_found_through_a_real_server(
    signal: SignalType, server: tuple[ServerProcess, Stubs]
) -> None:
    proc, stubs = server
    keys = proc.keys  # type: ignore[attr-defined]
    rng = np.random.default_rng(SIGNALS.index(signal) + 10)
    value, unrelated = informative(signal, rng, 2)
    case = stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=[hash_to_pb(HashValue(signal, value, quality(signal)))]),
        metadata=bearer(keys["submitter"]),
    )
    assert case.entry_count == 1

    def check(h: HashValue) -> pb.CheckUploadResponse:
        request = pb.CheckUploadRequest(hashes=[hash_to_pb(h)], content_ref=signal.name)
        return stubs.match.CheckUpload(request, metadata=bearer(keys["operator"]))

    found = check(query_for(signal, value))
    assert found.decision == pb.DECISION_REVIEW
    assert [(m.algorithm, m.distance) for m in found.matches] == [
        (pb.HashAlgorithm.Value(signal.proto_name), 0)
    ]
    assert check(query_for(signal, unrelated)).decision == pb.DECISION_ALLOW
