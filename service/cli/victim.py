"""The victim's commands: `hashguard hash` (on this machine, no network), `hashguard submit`
(sends only the hashes) and `hashguard case status|withdraw` (with the case token)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import av.error
from tqdm import tqdm

from service import submission_file
from service.cli.common import api_key, client_tls, connection_flags, enum_name, remote_flags
from service.config import Settings
from service.domain import HashValue
from service.errors import HashGuardError, InvalidInput
from service.media.crops import DEFAULT_WINDOWS
from service.media.decode import decode_image
from service.media.sniff import is_video_file
from service.media.video import SampledFrame, VideoLimits, sample_frames
from service.media.video_hashes import file_digests, hash_frames, pack
from service.signals.base import HashOptions
from service.signals.photo import Photo
from service.signals.registry import SIGNALS, parse_name
from service.submission_checks import degenerate


def add_hash(commands: Any) -> None:
    hash_ = commands.add_parser("hash", help="hash photos and videos on this machine (no network)")
    hash_.add_argument("files", nargs="+", metavar="FILE")
    hash_.add_argument("--out", help="write the submission file here (default: stdout)")
    hash_.add_argument(
        "--no-windows",
        action="store_true",
        help="leave out the sub-window hashes that let cropped copies match "
        f"(about {len(DEFAULT_WINDOWS)} more PDQ hashes per photo)",
    )
    hash_.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (they are off anyway when stderr is not a terminal)",
    )
    hash_.set_defaults(handler=cmd_hash)


def add_submit(commands: Any) -> None:
    submit = commands.add_parser("submit", help="send a submission file's hashes")
    submit.add_argument("submission", metavar="SUBMISSION_JSON")
    remote_flags(submit)
    submit.set_defaults(handler=cmd_submit)


def add_case(commands: Any) -> None:
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
        sub.add_argument("--json", action="store_true", help="print the answer as JSON")
        connection_flags(sub)
        sub.set_defaults(handler=handler)


def _photo_hashes(path: str, windows: bool) -> list[HashValue]:
    """Every hash type's hashes of a photo (with `windows`, the PDQ of its sub-windows
    too), from one decode of every pixel: no draft scaling, so a submitted PDQ is the
    canonical one other implementations compute for the same file."""
    data = Path(path).read_bytes()
    if not data:
        raise InvalidInput("image is empty")
    photo = Photo(decode_image(data, draft_side=0), data)
    options = HashOptions(Settings().pdq_min_quality, windows)
    return [h for s in SIGNALS for h in s.photo_hashes(photo, options)]


def _listable(name: str, hashes: list[HashValue]) -> list[HashValue]:
    """The hashes the service would accept: a flat photo's PDQ (quality under the
    service's default minimum) would refuse the whole case, so it is left out here with
    a word, and the photo's other hashes still go in."""
    kept = []
    for h in hashes:
        problem = degenerate(h, Settings().pdq_min_quality)
        if problem is None:
            kept.append(h)
        elif h.algorithm.one_per_photo:  # windows are many; their PDQ's note says it
            note = f"{name}: its {h.algorithm.name} is left out: {problem[1]}"
            tqdm.write(note, file=sys.stderr)
    return kept


def video_file_hashes(path: str, limits: VideoLimits, bars: bool) -> list[HashValue]:
    """A video's vPDQ (one frame a second), then MD5 and SHA-256 of its bytes, within the
    service's limits. The bar counts seconds of video; it stops where the video does."""
    data = Path(path).read_bytes()
    with tqdm(
        total=_seconds(path, limits),
        desc=Path(path).name[-30:],
        unit=" s",
        file=sys.stderr,
        disable=not bars,
        leave=False,
        position=1,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s of video",
    ) as bar:

        def counted(samples: Iterator[SampledFrame]) -> Iterator[SampledFrame]:
            for sample in samples:
                bar.update(1)
                yield sample

        frames = hash_frames(counted(sample_frames(data, limits)))
    md5, sha256 = file_digests(data)
    return [
        HashValue(parse_name("vpdq"), pack(frames)),
        HashValue(parse_name("video-sha256"), sha256),
        HashValue(parse_name("video-md5"), md5),
    ]


def _seconds(path: str, limits: VideoLimits) -> int | None:
    """The seconds the container declares, for the bar's length (None when it says none
    or cannot be read: sample_frames then says why)."""
    try:
        with av.open(path, options={"max_pixels": str(limits.max_frame_pixels)}) as container:
            if container.duration is None:
                return None
            return max(1, math.ceil(container.duration / av.time_base / limits.every_seconds))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None


def _file_hashes(name: str, args: argparse.Namespace, bars: bool) -> list[HashValue]:
    """A photo's hashes, or a video's (sniffed from its first bytes, not its name)."""
    if is_video_file(name):
        return video_file_hashes(name, VideoLimits(), bars=bars)
    return _photo_hashes(name, windows=not args.no_windows)


def cmd_hash(args: argparse.Namespace) -> int:
    """Hash photos and videos locally. Nothing here opens a network connection. Messages
    go above the progress bars (tqdm.write), never through them."""
    bars = not args.quiet and sys.stderr.isatty()
    images, skipped = [], 0
    for name in tqdm(
        args.files, unit=" files", file=sys.stderr, disable=not bars or len(args.files) < 2
    ):
        try:
            hashes = _listable(name, _file_hashes(name, args, bars))
        except (HashGuardError, OSError) as exc:
            skipped += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            tqdm.write(f"skipped {name}: {reason}", file=sys.stderr)
            continue
        if not hashes:
            skipped += 1
            tqdm.write(f"skipped {name}: none of its hashes can be listed", file=sys.stderr)
            continue
        images.append(submission_file.image_entry(Path(name).name, hashes))
    if not images:
        print("error: no photo or video could be hashed", file=sys.stderr)
        return 1
    text = submission_file.dump(images)
    done = _photos(len(images))
    if skipped:
        done = f"{len(images)} of {_photos(len(args.files))} ({skipped} skipped, named above)"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(
            f"hashed {done} into {args.out}; only these hashes are sent when you run "
            "`hashguard submit`",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
        if skipped:
            print(f"hashed {done}", file=sys.stderr)
    if skipped:
        print("exit status 1: not every file was hashed", file=sys.stderr)
    return 1 if skipped else 0


def _photos(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def cmd_submit(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client, hash_to_pb

    hashes = submission_file.load(args.submission)
    with Client(args.target, api_key(args), tls=client_tls(args)) as client:
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
    with Client(args.target, tls=client_tls(args)) as client:
        reply = getattr(client.submission, method)(
            request_type(case_id=args.case_id.strip(), case_token=args.token),
            timeout=client.timeout,
        )
    fields = json_format.MessageToDict(
        reply, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    fields["state"] = enum_name(pb.CaseState, reply.state).lower()
    if args.json:
        print(json.dumps(fields, indent=2))
        return 0
    labels = {
        "case_id": "case",
        "state": "state",
        "created_at": "opened",
        "entries_pending": "hashes waiting for a moderator's confirmation",
        "entries_vetted": "hashes confirmed (their copies are blocked)",
        "entries_withdrawn": "hashes withdrawn",
        "hits_total": "uploads that matched",
        "hits_confirmed": "uploads a moderator confirmed",
    }
    if method == "GetCase":
        fields["created_at"] = f"{reply.created_at.ToDatetime():%Y-%m-%d %H:%M} UTC"
    width = max(len(labels[k]) for k in fields if k in labels)
    for key, value in fields.items():
        print(f"{labels.get(key, key) + ':':{width + 1}} {value}")
    return 0
