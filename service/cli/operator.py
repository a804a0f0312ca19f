"""The commands of a platform's operators and moderators: `hashguard check` (files against
the list, several in CheckUploadBatch calls) and `hashguard hits list|resolve`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.cli.common import api_key, client_tls, enum_name, remote_flags
from service.errors import HashGuardError

# Files per CheckUploadBatch call from `hashguard check`, and bytes: well under the
# server's default 20 MiB request cap (a larger file still goes, alone).
_CHECK_BATCH_FILES = 32
_CHECK_BATCH_BYTES = 8 * 1024 * 1024


def add_check(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="check images and videos against the list (several images go in "
        "CheckUploadBatch calls; each video alone, streamed when large)",
    )
    check.add_argument("file", metavar="FILE", nargs="+")
    check.add_argument(
        "--content-ref", default="", help="your id for the upload (one file; else the file name)"
    )
    remote_flags(check)
    check.set_defaults(handler=cmd_check)


def add_hits(commands: Any) -> None:
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
    remote_flags(list_)
    list_.set_defaults(handler=cmd_hits_list)
    resolve = hits.add_parser("resolve", help="confirm or reject a hit")
    resolve.add_argument("hit_id")
    verdict = resolve.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--confirm", action="store_true", help="it is the listed image")
    verdict.add_argument("--reject", action="store_true", help="it is not")
    resolve.add_argument("--note", default="")
    remote_flags(resolve)
    resolve.set_defaults(handler=cmd_hits_resolve)


def cmd_check(args: argparse.Namespace) -> int:
    import grpc
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client
    from service.media.sniff import is_video_file

    if len(args.file) > 1 and args.content_ref:
        raise HashGuardError("--content-ref is for one file; several are named by file name")
    empty = [f for f in args.file if Path(f).stat().st_size == 0]
    if len(args.file) == 1 and empty:
        raise HashGuardError(f"{empty[0]} is empty (0 bytes): there is nothing to check")
    videos = [f for f in args.file if f not in empty and is_video_file(f)]
    with Client(args.target, api_key(args), tls=client_tls(args)) as client:
        if len(args.file) == 1 and videos:
            _print_check(client.check_video(videos[0], args.content_ref or videos[0]), "")
            return 0
        if len(args.file) == 1:
            # Recorded with the hit: the file's path unless --content-ref names the upload,
            # as several files are.
            reply = client.match.CheckUpload(
                pb.CheckUploadRequest(
                    image=Path(args.file[0]).read_bytes(),
                    content_ref=args.content_ref or args.file[0],
                ),
                metadata=client.metadata,
                timeout=client.timeout,
            )
            _print_check(reply, "")
            return 0
        failed = len(empty)
        for name in empty:
            print(f"{name}:\n  error: the file is empty (0 bytes)")
        for name in videos:
            print(f"{name}:")
            try:
                _print_check(client.check_video(name, name), "  ")
            except grpc.RpcError as exc:
                print(f"  error: {exc.details()}")
                failed += 1
        images = [f for f in args.file if f not in empty and f not in videos]
        for chunk in _check_chunks(images):
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
            f"{indent}  match entry {m.entry_id} {enum_name(pb.HashAlgorithm, m.algorithm)} "
            f"distance {m.distance} ({enum_name(pb.EntryState, m.entry_state)})"
        )
        if m.HasField("span"):
            span = m.span
            print(
                f"{indent}    seconds {span.upload_start_seconds:.1f}-{span.upload_end_seconds:.1f}"
                f" of the upload match {span.listed_start_seconds:.1f}-"
                f"{span.listed_end_seconds:.1f} of the listed video"
            )
    if reply.hit_id:
        print(f"{indent}hit: {reply.hit_id}")
    for note in reply.notes:
        print(f"{indent}note: {note}")


def cmd_hits_list(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client

    state = "HIT_STATE_UNSPECIFIED" if args.state == "all" else f"HIT_STATE_{args.state.upper()}"
    with Client(args.target, api_key(args), tls=client_tls(args)) as client:
        reply = client.review.ListHits(
            pb.ListHitsRequest(state=state, page_size=args.limit),
            metadata=client.metadata,
            timeout=client.timeout,
        )
    for hit in reply.hits:
        best = min(hit.matches, key=lambda m: m.distance, default=None)
        detail = (
            f"{enum_name(pb.HashAlgorithm, best.algorithm)} distance {best.distance}"
            if best
            else ""
        )
        print(
            f"{hit.hit_id}  {enum_name(pb.HitState, hit.state):9}  "
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
    with Client(args.target, api_key(args), tls=client_tls(args)) as client:
        hit_id = _full_hit_id(client, args.hit_id)
        reply = client.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=hit_id, verdict=verdict, note=args.note),
            metadata=client.metadata,
            timeout=client.timeout,
        )
    print(f"hit {reply.hit.hit_id}: {enum_name(pb.HitState, reply.hit.state)}")
    if reply.vetted_entry_ids:
        print(
            f"vetted entries: {', '.join(map(str, reply.vetted_entry_ids))} "
            "(matches on them now BLOCK)"
        )
    return 0


# A hit id shorter than this is looked up among the pending hits the key sees.
_FULL_ID_LENGTH = 36
_PREFIX_SEARCH_LIMIT = 5000


def _full_hit_id(client: Any, given: str) -> str:
    """`given` itself when it is a whole id; else the one pending hit (among the newest
    5000 the key sees) whose id starts with it, as `hits list` and the README show ids
    shortened. Ambiguous or unknown prefixes are refused with what was found."""
    from hashguard.v1 import hashguard_pb2 as pb

    given = given.strip().rstrip("…").rstrip(".").lower()
    if len(given) >= _FULL_ID_LENGTH:
        return given
    if len(given) < 4:
        raise HashGuardError("give at least the first 4 characters of the hit id")
    found: list[str] = []
    token, seen = "", 0
    while seen < _PREFIX_SEARCH_LIMIT:
        page = client.review.ListHits(
            pb.ListHitsRequest(state=pb.HIT_STATE_PENDING, page_size=500, page_token=token),
            metadata=client.metadata,
            timeout=client.timeout,
        )
        found += [h.hit_id for h in page.hits if h.hit_id.startswith(given)]
        seen += len(page.hits)
        token = page.next_page_token
        if not token:
            break
    if len(found) == 1:
        return found[0]
    if not found:
        raise HashGuardError(f"no pending hit id starts with {given!r}; give the whole id")
    raise HashGuardError(
        f"{len(found)} pending hits start with {given!r} ({', '.join(found[:5])}); "
        "give more of the id"
    )
