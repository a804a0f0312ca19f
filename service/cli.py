"""The `hashguard` command: serve, web, keys, hash, submit, check, case, hits, import, export,
audit, disputed (the last two and `keys list|revoke|rotate` live in cli_admin.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import grpc
from tqdm import tqdm

from service import submission_file
from service.api.tls import ClientTls, open_channel
from service.config import SETTINGS, WEB_SETTINGS, Settings, load_settings, load_web_settings
from service.crops import DEFAULT_WINDOWS, window_hashes
from service.domain import DEFAULT_TENANT, Algorithm, EntryState, HashValue, Role
from service.errors import HashGuardError
from service.hashing import decode_image, hash_decoded, hash_file
from service.hashlist import FORMATS, detect_format, read_hashes, write_hashes
from service.store import Store
from service.submission_checks import degenerate

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.handler(args) or 0)
    except HashGuardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashguard",
        description="Hash-matching service that stops re-uploads of intimate images "
        "shared without consent.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC service")
    for setting in SETTINGS:
        serve.add_argument(
            setting.flag,
            type=setting.type,
            default=None,
            help=f"{setting.help} (env {setting.env}; default {setting.default})",
        )
    serve.set_defaults(handler=cmd_serve)

    web = commands.add_parser("web", help="serve the victims' pages and the moderators' console")
    for setting in WEB_SETTINGS:
        web.add_argument(
            setting.flag,
            type=setting.type,
            default=None,
            help=f"{setting.help} (env {setting.env}; default {setting.default!r})",
        )
    web.set_defaults(handler=cmd_web)

    health = commands.add_parser(
        "health", help="ask a server whether it is serving (exit 0) or not (exit 1)"
    )
    _connection(health)
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait")
    health.set_defaults(handler=cmd_health)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    add = keys.add_parser("add", help="create an API key; prints it once, on the last line")
    _data_dir(add)
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", help="a unique name for the key (default: role-<id>)")
    add.add_argument(
        "--tenant",
        default=DEFAULT_TENANT,
        help=f"the platform the key acts for (default {DEFAULT_TENANT!r}); moderators see "
        "only their tenant's hits",
    )
    add.set_defaults(handler=cmd_keys_add)

    hash_ = commands.add_parser("hash", help="hash photos on this machine (no network)")
    hash_.add_argument("files", nargs="+", metavar="FILE")
    hash_.add_argument("--out", help="write the submission file here (default: stdout)")
    hash_.add_argument(
        "--no-windows",
        action="store_true",
        help="leave out the sub-window hashes that let cropped copies match "
        f"(about {len(DEFAULT_WINDOWS)} more PDQ hashes per photo)",
    )
    hash_.set_defaults(handler=cmd_hash)

    submit = commands.add_parser("submit", help="send a submission file's hashes")
    submit.add_argument("submission", metavar="SUBMISSION_JSON")
    _remote(submit)
    submit.set_defaults(handler=cmd_submit)

    check = commands.add_parser(
        "check",
        help="check images against the list (several files go in CheckUploadBatch calls)",
    )
    check.add_argument("file", metavar="FILE", nargs="+")
    check.add_argument(
        "--content-ref", default="", help="your id for the upload (one file; else the file name)"
    )
    _remote(check)
    check.set_defaults(handler=cmd_check)

    case = commands.add_parser("case", help="follow or withdraw a case").add_subparsers(
        dest="case_command", required=True, metavar="ACTION"
    )
    for name, handler, text in (
        ("status", cmd_case_status, "show a case's status"),
        ("withdraw", cmd_case_withdraw, "withdraw a case: its hashes stop matching and are erased"),
    ):
        sub = case.add_parser(name, help=text)
        sub.add_argument("case_id")
        sub.add_argument(
            "--token",
            default=os.environ.get("HASHGUARD_CASE_TOKEN"),
            help="the case token (or env HASHGUARD_CASE_TOKEN)",
        )
        _connection(sub)
        sub.set_defaults(handler=handler)

    hits = commands.add_parser("hits", help="review hits (moderators)").add_subparsers(
        dest="hits_command", required=True, metavar="ACTION"
    )
    list_ = hits.add_parser("list", help="list hits, newest first")
    list_.add_argument(
        "--state",
        choices=["pending", "confirmed", "rejected", "withdrawn", "all"],
        default="pending",
    )
    list_.add_argument("--limit", type=int, default=50)
    _remote(list_)
    list_.set_defaults(handler=cmd_hits_list)
    resolve = hits.add_parser("resolve", help="confirm or reject a hit")
    resolve.add_argument("hit_id")
    verdict = resolve.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--confirm", action="store_true", help="it is the listed image")
    verdict.add_argument("--reject", action="store_true", help="it is not")
    resolve.add_argument("--note", default="")
    _remote(resolve)
    resolve.set_defaults(handler=cmd_hits_resolve)

    import_ = commands.add_parser("import", help="load a hash list into the store")
    import_.add_argument("file", metavar="FILE")
    _data_dir(import_)
    import_.add_argument(
        "--vetted", action="store_true", help="the list is already vetted: matches BLOCK at once"
    )
    import_.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    import_.add_argument(
        "--type",
        choices=[a.value for a in Algorithm],
        help="hash type of plain lines that hold only the hex (e.g. pdq)",
    )
    import_.set_defaults(handler=cmd_import)

    export = commands.add_parser("export", help="write the list as '<type> <hex>' lines")
    _data_dir(export)
    export.add_argument("--out", help="file to write (default: stdout)")
    export.add_argument(
        "--state",
        choices=["vetted", "pending", "all"],
        default="all",
        help="which entries (withdrawn ones have no hash and are never written)",
    )
    export.add_argument("--format", choices=FORMATS, default="plain")
    export.set_defaults(handler=cmd_export)

    from service import cli_admin

    cli_admin.register(commands, keys)
    return parser


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("HASHGUARD_DATA_DIR", "./hashguard-data"),
        help="the server's data directory (env HASHGUARD_DATA_DIR)",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("HASHGUARD_STORE", "sqlite"),
        help="'sqlite' (in --data-dir) or the servers' postgresql:// URL (env HASHGUARD_STORE)",
    )


def _open_store(args: argparse.Namespace) -> Store:
    from service.store import open_store

    return open_store(args.store, args.data_dir, pool_size=2)


def _connection(parser: argparse.ArgumentParser) -> None:
    """--target and the TLS flags of every command that calls a server."""
    parser.add_argument("--target", default="127.0.0.1:50051", help="HOST:PORT of the service")
    tls = parser.add_argument_group("TLS (the server's --tls-cert)")
    tls.add_argument("--tls", action="store_true", help="use TLS, trusting the system's CAs")
    for flag, env, text in (
        ("--tls-ca", "HASHGUARD_TLS_CA", "PEM CA that signed the server's certificate"),
        ("--tls-cert", "HASHGUARD_CLIENT_CERT", "PEM client certificate, for mutual TLS"),
        ("--tls-key", "HASHGUARD_CLIENT_KEY", "PEM key of --tls-cert"),
        ("--tls-server-name", None, "name to check the server certificate against"),
    ):
        default = os.environ.get(env, "") if env else ""
        tls.add_argument(flag, default=default, help=text + (f" (env {env})" if env else ""))


def _tls(args: argparse.Namespace) -> ClientTls:
    return ClientTls(args.tls, args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)


def _remote(parser: argparse.ArgumentParser) -> None:
    _connection(parser)
    parser.add_argument(
        "--key",
        default=os.environ.get("HASHGUARD_KEY"),
        help="API key (or env HASHGUARD_KEY, which keeps it out of shell history)",
    )


# -- server-side commands -------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from service.allocator import cap_arenas
    from service.api.server import serve
    from service.app import HashGuard
    from service.replica.snapshot import snapshot_dir
    from service.store import open_store

    settings = load_settings({s.name: getattr(args, s.name) for s in SETTINGS})
    cap_arenas(settings.malloc_arena_max)  # before any thread starts
    started = time.perf_counter()
    store = open_store(settings.store, settings.data_path, settings.pool_size)
    try:
        app = HashGuard(store, settings, snapshot_dir(settings.data_path))
    except BaseException:
        store.close()
        raise
    sizes = ", ".join(f"{a.value} {app.matcher.size(a)}" for a in Algorithm)
    log = logging.getLogger("hashguard")
    log.info(
        "loaded the list in %.2fs from the %s (%s); applied changes up to %d",
        time.perf_counter() - started,
        app.loaded_from,
        sizes,
        app.follower.applied_seq,
    )
    if app.store.count_api_keys() == 0:
        log.warning(
            "no API keys yet: every call but GetCase/WithdrawCase will be refused; create "
            "one with: hashguard keys add --data-dir %s --role operator",
            settings.data_dir,
        )
    return serve(settings, app)


def cmd_web(args: argparse.Namespace) -> int:
    from service.web.server import serve

    return serve(load_web_settings({s.name: getattr(args, s.name) for s in WEB_SETTINGS}))


def cmd_health(args: argparse.Namespace) -> int:
    """The standard gRPC health check, for container health checks without extra tools."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with open_channel(args.target, _tls(args)) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types miss Check
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"not serving: {exc.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def cmd_keys_add(args: argparse.Namespace) -> int:
    from service.key_management import create_api_key

    store = _open_store(args)
    try:
        key = create_api_key(store, Role(args.role), args.name, args.tenant)
    finally:
        store.close()
    print(
        f"created {args.role} key for tenant {args.tenant!r}; it is shown only now, store it "
        "safely:",
        file=sys.stderr,
    )
    print(key)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from service.key_management import local_actor

    fmt = detect_format(args.file, args.format)
    store = _open_store(args)
    started = time.perf_counter()
    try:
        with _progress_lines(args.file) as lines:
            default_type = Algorithm(args.type) if args.type else None
            hashes = read_hashes(lines, fmt, default_type)
            audit = local_actor("list.imported", Path(args.file).name, f"vetted={args.vetted}")
            result = store.import_entries(hashes, args.vetted, time.time(), audit)
    finally:
        store.close()
    print(
        f"imported {result.added} new entries ({'vetted' if args.vetted else 'pending'}), "
        f"vetted {result.vetted} existing, {result.unchanged} already present, "
        f"in {time.perf_counter() - started:.1f}s. Running servers on this store start "
        "applying them within a second (about 11 s per million entries)."
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    states = {
        "vetted": [EntryState.VETTED],
        "pending": [EntryState.PENDING],
        "all": [EntryState.PENDING, EntryState.VETTED],
    }[args.state]
    store = _open_store(args)
    try:
        rows = (
            HashValue(row.algorithm, row.value)
            for batch in store.iter_entries(states)
            for row in batch
        )
        with _output(args.out) as out:
            count = write_hashes(
                out, tqdm(rows, unit=" hashes", disable=args.out is None), args.format
            )
    finally:
        store.close()
    print(f"exported {count} hashes", file=sys.stderr)
    return 0


@contextmanager
def _progress_lines(path: str) -> Iterator[Iterator[str]]:
    """Lines of a file with a progress bar over its bytes (updated every 10k lines)."""
    total = Path(path).stat().st_size
    with (
        open(path, encoding="utf-8", newline="") as handle,
        tqdm(total=total, unit="B", unit_scale=True, desc="import", file=sys.stderr) as bar,
    ):

        def lines() -> Iterator[str]:
            done = 0
            for number, line in enumerate(handle, 1):
                done += len(line)
                if number % 10_000 == 0:
                    bar.update(done)
                    done = 0
                yield line
            bar.update(done)

        yield lines()


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    tmp = Path(path + ".part")
    with open(tmp, "w", encoding="utf-8") as handle:
        yield handle
    tmp.replace(path)  # a reader never sees a half-written list


# -- victim and operator commands -----------------------------------------------------


def _photo_hashes(path: str, windows: bool) -> list[HashValue]:
    """A photo's hashes (service.hashing.hash_file) and, with `windows`, the PDQ of its
    sub-windows (service.crops), from one decode of every pixel."""
    if not windows:
        return hash_file(path).canonical
    data = Path(path).read_bytes()
    image = decode_image(data, draft_side=0)
    return hash_decoded(image, data).canonical + window_hashes(image, Settings().pdq_min_quality)


def _listable(name: str, hashes: list[HashValue]) -> list[HashValue]:
    """The hashes the service would accept: a flat photo's PDQ (quality under the
    service's default minimum) would refuse the whole case, so it is left out here with
    a word, and the photo's other hashes still go in."""
    kept = []
    for h in hashes:
        problem = degenerate(h, Settings().pdq_min_quality)
        if problem is None:
            kept.append(h)
        elif h.algorithm is not Algorithm.PDQ_WINDOW:  # windows are many; their PDQ's note says it
            print(f"{name}: its {h.algorithm.value} is left out: {problem[1]}", file=sys.stderr)
    return kept


def cmd_hash(args: argparse.Namespace) -> int:
    """Hash photos locally. Nothing here opens a network connection."""
    images, failed = [], 0
    for name in tqdm(args.files, unit=" photos", file=sys.stderr, disable=len(args.files) < 2):
        try:
            hashes = _listable(name, _photo_hashes(name, windows=not args.no_windows))
        except (HashGuardError, OSError) as exc:
            failed += 1
            print(f"skipped {name}: {exc}", file=sys.stderr)
            continue
        if not hashes:
            failed += 1
            print(f"skipped {name}: none of its hashes can be listed", file=sys.stderr)
            continue
        images.append(submission_file.image_entry(Path(name).name, hashes))
    if not images:
        print("error: no photo could be hashed", file=sys.stderr)
        return 1
    text = submission_file.dump(images)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(
            f"hashed {len(images)} photos into {args.out}; only these hashes are sent "
            "when you run `hashguard submit`",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 1 if failed else 0


def cmd_submit(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.api.convert import hash_to_pb
    from service.client import Client

    hashes = submission_file.load(args.submission)
    with Client(args.target, _key(args), tls=_tls(args)) as client:
        reply = client.submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=[hash_to_pb(h) for h in hashes]),
            metadata=client.metadata,
            timeout=client.timeout,
        )
    print(f"case id:    {reply.case_id}")
    print(f"case token: {reply.case_token}")
    print(
        "Keep the token private and safe: it is shown only now, and it is the only way "
        "to check on or withdraw this case.",
        file=sys.stderr,
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client

    if len(args.file) > 1 and args.content_ref:
        raise HashGuardError("--content-ref is for one file; several are named by file name")
    with Client(args.target, _key(args), tls=_tls(args)) as client:
        if len(args.file) == 1:
            reply = client.match.CheckUpload(
                pb.CheckUploadRequest(
                    image=Path(args.file[0]).read_bytes(), content_ref=args.content_ref
                ),
                metadata=client.metadata,
                timeout=client.timeout,
            )
            _print_check(reply, "")
            return 0
        failed = 0
        for chunk in _check_chunks(args.file):
            uploads = [
                pb.CheckUploadRequest(image=Path(f).read_bytes(), content_ref=f) for f in chunk
            ]
            batch = client.match.CheckUploadBatch(
                pb.CheckUploadBatchRequest(uploads=uploads),
                metadata=client.metadata,
                timeout=client.timeout,
            )
            for reply in batch.results:
                print(f"{reply.content_ref}:")
                if reply.HasField("error"):
                    print(f"  error: {reply.error.message}")
                    failed += 1
                else:
                    _print_check(reply, "  ")
    if failed:
        print(f"{failed} of {len(args.file)} files could not be checked", file=sys.stderr)
    return 1 if failed else 0


# Files per CheckUploadBatch call from `hashguard check`, and bytes: well under the
# server's default 20 MiB request cap (a larger file still goes, alone).
_CHECK_BATCH_FILES = 32
_CHECK_BATCH_BYTES = 8 * 1024 * 1024


def _check_chunks(files: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for name in files:
        length = Path(name).stat().st_size
        if chunk and (len(chunk) == _CHECK_BATCH_FILES or size + length > _CHECK_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += length
    if chunk:
        yield chunk


def _print_check(reply: Any, indent: str) -> None:
    from hashguard.v1 import hashguard_pb2 as pb

    print(f"{indent}decision: {pb.Decision.Name(reply.decision).removeprefix('DECISION_')}")
    for m in reply.matches:
        print(
            f"{indent}  match entry {m.entry_id} {_name(pb.HashAlgorithm, m.algorithm)} "
            f"distance {m.distance} ({_name(pb.EntryState, m.entry_state)})"
        )
    if reply.hit_id:
        print(f"{indent}hit: {reply.hit_id}")
    for note in reply.notes:
        print(f"{indent}note: {note}")


def cmd_case_status(args: argparse.Namespace) -> int:
    return _case_call(args, "GetCase")


def cmd_case_withdraw(args: argparse.Namespace) -> int:
    return _case_call(args, "WithdrawCase")


def _case_call(args: argparse.Namespace, method: str) -> int:
    from google.protobuf import json_format
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client

    if not args.token:
        raise HashGuardError("--token (or env HASHGUARD_CASE_TOKEN) is required")
    request_type = pb.GetCaseRequest if method == "GetCase" else pb.WithdrawCaseRequest
    with Client(args.target, tls=_tls(args)) as client:
        reply = getattr(client.submission, method)(
            request_type(case_id=args.case_id, case_token=args.token), timeout=client.timeout
        )
    print(
        json_format.MessageToJson(
            reply, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
        )
    )
    return 0


def cmd_hits_list(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client

    state = "HIT_STATE_UNSPECIFIED" if args.state == "all" else f"HIT_STATE_{args.state.upper()}"
    with Client(args.target, _key(args), tls=_tls(args)) as client:
        reply = client.review.ListHits(
            pb.ListHitsRequest(state=state, page_size=args.limit),
            metadata=client.metadata,
            timeout=client.timeout,
        )
    for hit in reply.hits:
        best = min(hit.matches, key=lambda m: m.distance, default=None)
        detail = (
            f"{_name(pb.HashAlgorithm, best.algorithm)} distance {best.distance}" if best else ""
        )
        print(
            f"{hit.hit_id}  {_name(pb.HitState, hit.state):9}  "
            f"{hit.created_at.ToDatetime():%Y-%m-%d %H:%M:%S}  {hit.tenant}/{hit.operator}  "
            f"ref={hit.content_ref!r}  {detail}"
        )
    if not reply.hits:
        print(f"no {args.state} hits", file=sys.stderr)
    return 0


def cmd_hits_resolve(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client

    verdict = pb.VERDICT_CONFIRMED if args.confirm else pb.VERDICT_REJECTED
    with Client(args.target, _key(args), tls=_tls(args)) as client:
        reply = client.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=args.hit_id, verdict=verdict, note=args.note),
            metadata=client.metadata,
            timeout=client.timeout,
        )
    print(f"hit {reply.hit.hit_id}: {_name(pb.HitState, reply.hit.state)}")
    if reply.vetted_entry_ids:
        print(
            f"vetted entries: {', '.join(map(str, reply.vetted_entry_ids))} "
            "(matches on them now BLOCK)"
        )
    return 0


def _key(args: argparse.Namespace) -> str:
    if not args.key:
        raise HashGuardError("--key (or env HASHGUARD_KEY) is required")
    return str(args.key)


def _name(enum: object, value: int) -> str:
    """`HASH_ALGORITHM_PDQ` -> `PDQ`."""
    full: str = enum.Name(value)  # type: ignore[attr-defined]
    return full.split("_", 2)[-1] if full.count("_") >= 2 else full


if __name__ == "__main__":
    sys.exit(main())
