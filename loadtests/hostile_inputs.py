"""Hostile requests for the fuzz harness (loadtests/fuzz_inputs.py) and the hostile-input
tests: broken and malicious images in every accepted format, and malformed, oversized,
mistyped and mutated protobuf requests. Every probe is raw request bytes for one method,
so malformed messages reach the server exactly as an attacker would send them.

Images are generated (gradients and noise), never photos of people.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import struct
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import numpy as np
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

CHECK = "/hashguard.v1.MatchService/CheckUpload"
CHECKS = "/hashguard.v1.MatchService/CheckUploads"
SUBMIT = "/hashguard.v1.SubmissionService/SubmitCase"
GET_CASE = "/hashguard.v1.SubmissionService/GetCase"
WITHDRAW = "/hashguard.v1.SubmissionService/WithdrawCase"
LIST_HITS = "/hashguard.v1.ReviewService/ListHits"
RESOLVE = "/hashguard.v1.ReviewService/ResolveHit"
# Which key each method is sent with (GetCase/WithdrawCase take a case token instead).
ROLE_OF = {
    CHECK: "operator",
    CHECKS: "operator",
    SUBMIT: "submitter",
    GET_CASE: "",
    WITHDRAW: "",
    LIST_HITS: "moderator",
    RESOLVE: "moderator",
}
WIDTH, HEIGHT = 64, 48


@dataclass(frozen=True)
class Probe:
    """One hostile request: `family` groups probes in the harness's table; `bodies` is
    one serialized request (several for the CheckUploads stream)."""

    family: str
    method: str
    bodies: tuple[bytes, ...]


def check(image: bytes, family: str) -> Probe:
    return Probe(family, CHECK, (pb.CheckUploadRequest(image=image).SerializeToString(),))


# --- images ----------------------------------------------------------------------------


def picture(seed: int = 0, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Image.Image:
    """A gradient with noise: structured enough for PDQ, different for every seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1)
    noise = rng.integers(0, 40, (size[1], size[0], 3))
    return Image.fromarray(((base + noise) % 256).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@cache
def seeds() -> dict[str, bytes]:
    """Valid files in every accepted format and some of their variants."""
    image = picture()
    frames = [picture(seed) for seed in range(1, 4)]
    return {
        "JPEG": encode(image, "JPEG", quality=85),
        "JPEG progressive": encode(image, "JPEG", progressive=True),
        "PNG": encode(image, "PNG"),
        "PNG 16-bit": encode(image.convert("I;16"), "PNG"),
        "GIF": encode(image, "GIF"),
        "GIF animated": encode(image, "GIF", save_all=True, append_images=frames),
        "WEBP": encode(image, "WEBP", quality=80),
        "WEBP lossless": encode(image, "WEBP", lossless=True),
        "WEBP animated": encode(image, "WEBP", save_all=True, append_images=frames),
        "TIFF": encode(image, "TIFF"),
        "TIFF lzw": encode(image, "TIFF", compression="tiff_lzw"),
        "BMP": encode(image, "BMP"),
    }


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def flip_bits(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 12))):
        out[int(rng.integers(0, len(out)))] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def overwrite(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    start, length = int(rng.integers(0, len(out))), int(rng.integers(1, 32))
    out[start : start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    return bytes(out)


def insert(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data)))
    filler = bytes([int(rng.choice([0x00, 0xFF, 0x7F]))]) * int(rng.integers(1, 64))
    return data[:at] + filler + data[at:]


def huge_dimensions(data: bytes, rng: np.random.Generator) -> bytes:
    """Replace the seed's width and height wherever the file stores them (16- or 32-bit,
    either byte order, as each format does) with large values: the header then declares
    far more pixels than the few bytes that follow."""
    big = int(rng.choice([9_000, 16_383, 30_000, 65_535, 100_000, 2**31 - 1]))
    out = data
    for fmt in (">I", "<I", ">H", "<H"):
        limit = 2 ** (8 * struct.calcsize(fmt)) - 1
        for side in (WIDTH, HEIGHT, WIDTH - 1, HEIGHT - 1):  # WebP stores sides - 1
            new = struct.pack(fmt, min(big, limit))
            out = out.replace(struct.pack(fmt, side), new, 1)
    return out


IMAGE_MUTATIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "truncated": truncate,
    "bit flips": flip_bits,
    "overwritten": overwrite,
    "inserted bytes": insert,
    "huge dimensions": huge_dimensions,
}


def png_bomb(width: int, height: int) -> bytes:
    """A PNG of one colour: a few kilobytes that inflate to width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one grey byte per pixel
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@cache
def many_frames(fmt: str, frames: int) -> bytes:
    """An animation of `frames` tiny frames (only the first is ever decoded)."""
    images = [Image.new("L", (16, 16), i % 256) for i in range(frames)]
    options = {"duration": 10} if fmt == "GIF" else {"quality": 10, "method": 0}
    return encode(images[0], fmt, save_all=True, append_images=images[1:], **options)


def fixed_image_probes(bomb_side: int) -> list[Probe]:
    """The hand-made cases, once each: bombs, many frames, empty and random bytes."""
    rng = np.random.default_rng(0)
    return [
        check(png_bomb(bomb_side, bomb_side), f"bomb {bomb_side}x{bomb_side} PNG"),
        check(png_bomb(20_000, 20_000), "bomb 20000x20000 PNG"),
        check(many_frames("GIF", 3_000), "3000-frame GIF"),
        check(many_frames("WEBP", 1_000), "1000-frame WebP"),
        check(b"", "empty image"),
        check(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "random bytes"),
        check(b"\x89PNG\r\n\x1a\n", "signature only"),
    ]


def _smooth(side: int, mode: str = "RGB") -> Image.Image:
    """A side x side gradient: compresses to little in every format, costs a lot decoded."""
    grey = Image.linear_gradient("L").resize((side, side), Image.Resampling.NEAREST)
    if mode == "L":
        return grey
    turned = [grey.transpose(t) for t in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180)]
    rgb = Image.merge("RGB", [grey, *turned])
    return rgb if mode == "RGB" else rgb.convert(mode)


def bmp_rle8(side: int) -> bytes:
    """An 8-bit BMP compressed with RLE8 (Pillow cannot write one): runs of 255 pixels."""
    runs, left = b"", side
    while left:
        runs += bytes([min(255, left), 7])
        left -= min(255, left)
    pixels = (runs + b"\x00\x00") * side + b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + palette + pixels


def progressive_jpeg_bombs(side: int) -> dict[str, bytes]:
    """The two JPEGs that cost the most for their size: about 6 and 8 bytes per pixel of
    coefficients whatever the draft scale (8000 x 8000: 1 MB files, 370 and 490 MB)."""
    rgb = _smooth(side)
    return {
        f"JPEG progressive 4:4:4 {side}²": encode(
            rgb, "JPEG", quality=30, progressive=True, subsampling=0
        ),
        f"JPEG progressive CMYK {side}²": encode(
            rgb.convert("CMYK"), "JPEG", quality=30, progressive=True
        ),
    }


def memory_bombs(side: int) -> dict[str, bytes]:
    """Small files that cost the most memory to decode, one per way a decoder allocates:
    progressive JPEGs (the whole image's coefficients, whatever the draft scale), CMYK,
    16-bit, palette and 1-bit PNGs, GIF, WebP (libwebp's canvases), TIFF (strip buffers,
    float and 16-bit samples), BMP (RLE decoded in Python); each side x side pixels."""
    rgb, grey = _smooth(side), _smooth(side, "L")
    cmyk = rgb.convert("CMYK")
    return {
        "JPEG progressive 4:4:4": encode(rgb, "JPEG", quality=30, progressive=True, subsampling=0),
        "JPEG progressive CMYK": encode(cmyk, "JPEG", quality=30, progressive=True),
        "JPEG progressive grey": encode(grey, "JPEG", quality=30, progressive=True),
        "JPEG CMYK": encode(cmyk, "JPEG", quality=30),
        "PNG RGB": encode(rgb, "PNG", compress_level=1),
        "PNG RGBA": encode(rgb.convert("RGBA"), "PNG", compress_level=1),
        "PNG grey+alpha": encode(grey.convert("LA"), "PNG", compress_level=1),
        "PNG 16-bit grey": encode(grey.convert("I;16"), "PNG", compress_level=1),
        "PNG palette": encode(grey.convert("P"), "PNG", compress_level=1),
        "PNG 1-bit": encode(grey.convert("1", dither=Image.Dither.NONE), "PNG"),
        "GIF": encode(grey.convert("P"), "GIF"),
        "WebP lossless": encode(rgb, "WEBP", lossless=True, method=0, quality=0),
        "WebP lossy": encode(grey, "WEBP", quality=10, method=0),
        "WebP alpha": encode(rgb.convert("RGBA"), "WEBP", lossless=True, method=0, quality=0),
        "TIFF RGB": encode(rgb, "TIFF", compression="tiff_adobe_deflate"),
        "TIFF CMYK": encode(cmyk, "TIFF", compression="tiff_adobe_deflate"),
        "TIFF float": encode(grey.convert("F"), "TIFF", compression="tiff_adobe_deflate"),
        "TIFF 16-bit": encode(grey.convert("I;16"), "TIFF", compression="tiff_adobe_deflate"),
        "BMP RLE8": bmp_rle8(side),
    }


# --- requests ----------------------------------------------------------------------------


def _hash(algorithm: Any = pb.HASH_ALGORITHM_PDQ, size: int = 32, quality: int = 100) -> pb.Hash:
    """`algorithm` is Any: the probes send numbers outside the enum on purpose."""
    return pb.Hash(algorithm=algorithm, value=bytes(i % 251 for i in range(size)), quality=quality)


def request_probes() -> list[Probe]:
    """Valid-looking messages with wrong enums, empty or oversized fields, unknown fields
    and other messages' bytes."""
    probes: list[tuple[str, str, object]] = [
        ("wrong enum", CHECK, pb.CheckUploadRequest(hashes=[_hash(algorithm=99)])),
        ("wrong enum", SUBMIT, pb.SubmitCaseRequest(hashes=[_hash(algorithm=-7)])),
        ("wrong enum", LIST_HITS, pb.ListHitsRequest(state=cast(Any, 42))),
        ("wrong enum", RESOLVE, pb.ResolveHitRequest(hit_id="x", verdict=cast(Any, 9))),
        ("wrong enum", CHECK, pb.CheckUploadRequest(hashes=[_hash(quality=1000)])),
        ("empty fields", CHECK, pb.CheckUploadRequest()),
        ("empty fields", SUBMIT, pb.SubmitCaseRequest()),
        ("empty fields", GET_CASE, pb.GetCaseRequest()),
        ("empty fields", WITHDRAW, pb.WithdrawCaseRequest()),
        ("empty fields", RESOLVE, pb.ResolveHitRequest()),
        ("empty fields", SUBMIT, pb.SubmitCaseRequest(hashes=[pb.Hash()])),
        ("oversized fields", CHECK, pb.CheckUploadRequest(hashes=[_hash()] * 10_000)),
        ("oversized fields", CHECK, pb.CheckUploadRequest(hashes=[_hash(size=1 << 20)])),
        (
            "oversized fields",
            CHECK,
            pb.CheckUploadRequest(hashes=[_hash()], content_ref="r" * 200_000),
        ),
        ("oversized fields", SUBMIT, pb.SubmitCaseRequest(hashes=[_hash(size=31)] * 50_000)),
        ("oversized fields", GET_CASE, pb.GetCaseRequest(case_id="c" * 500_000, case_token="t")),
        (
            "oversized fields",
            RESOLVE,
            pb.ResolveHitRequest(hit_id="h", verdict=pb.VERDICT_CONFIRMED, note="n" * 10**6),
        ),
        ("oversized fields", LIST_HITS, pb.ListHitsRequest(page_size=2**31 - 1)),
        ("oversized fields", LIST_HITS, pb.ListHitsRequest(page_size=-5)),
        ("oversized fields", LIST_HITS, pb.ListHitsRequest(page_token="%" * 100_000)),
        ("oversized fields", LIST_HITS, pb.ListHitsRequest(page_token="aGl0czp4")),
    ]
    out = [Probe(f, m, (message.SerializeToString(),)) for f, m, message in probes]  # type: ignore[attr-defined]
    valid = pb.CheckUploadRequest(hashes=[_hash()], content_ref="ok").SerializeToString()
    unknown_fields = (
        valid + b"\xf8\x06\x01",  # field 111, varint
        valid + b"\x8a\x07\x03abc",  # field 113, bytes
        valid + b"\x95\x07\x00\x00\x80\x3f",  # field 114, fixed32
    )
    out += [Probe("unknown fields", CHECK, (body,)) for body in unknown_fields]
    other_message = pb.ResolveHitRequest(
        hit_id="h" * 40, verdict=pb.VERDICT_CONFIRMED
    ).SerializeToString()
    out += [
        Probe("other message", CHECK, (other_message,)),
        Probe("other message", SUBMIT, (valid,)),
        Probe("malformed protobuf", CHECK, (b"\xff\xff\xff\xff",)),
        Probe("malformed protobuf", GET_CASE, (b"\x0a\x05ab",)),
        Probe("malformed protobuf", GET_CASE, (b"\x0a\x02\xff\xfe",)),  # invalid UTF-8 string
        Probe("stream", CHECKS, (valid, b"\xff\xff", valid)),
        Probe("stream", CHECKS, (valid, pb.CheckUploadRequest().SerializeToString(), valid)),
    ]
    return out


def mutated_request(rng: np.random.Generator) -> Probe:
    """A valid request of a random method with its bytes mutated."""
    valid = {
        CHECK: pb.CheckUploadRequest(hashes=[_hash(), _hash(pb.HASH_ALGORITHM_MD5, 16)]),
        SUBMIT: pb.SubmitCaseRequest(hashes=[_hash(pb.HASH_ALGORITHM_SHA256)]),
        GET_CASE: pb.GetCaseRequest(case_id="3f2a" * 9, case_token="t" * 43),
        LIST_HITS: pb.ListHitsRequest(
            state=pb.HIT_STATE_PENDING, page_size=10, page_token="aGl0czo1"
        ),
        RESOLVE: pb.ResolveHitRequest(
            hit_id="3f2a" * 9, verdict=pb.VERDICT_REJECTED, note="not it"
        ),
    }
    method = str(rng.choice(list(valid)))
    body = valid[method].SerializeToString()
    name = str(rng.choice(list(IMAGE_MUTATIONS)[:4]))
    return Probe("mutated request", method, (IMAGE_MUTATIONS[name](body, rng),))


def random_probes(rng: np.random.Generator) -> Iterator[Probe]:
    """Endless: a mutated image (each format and mutation in turn) or a mutated request."""
    formats = list(seeds())
    while True:
        if rng.random() < 0.2:
            yield mutated_request(rng)
            continue
        fmt = str(rng.choice(formats))
        mutation = str(rng.choice(list(IMAGE_MUTATIONS)))
        family = f"{mutation} {fmt.split()[0]}"
        yield check(IMAGE_MUTATIONS[mutation](seeds()[fmt], rng), family)


# --- every field of every request ------------------------------------------------------

BATCH = "/hashguard.v1.MatchService/CheckUploadBatch"
DISPUTED = "/hashguard.v1.ReviewService/ListDisputedEntries"
ROLE_OF |= {BATCH: "operator", DISPUTED: "admin"}


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# Seeds from issue 15 (each once failed a call with INTERNAL) and their kin.
HOSTILE_STRINGS = (  # NUL first: a valid value may resolve the seeded hit
    "\x00",
    "ref\x00with a NUL",
    "",
    "\u202egnp.exe",  # right-to-left override
    "x" * 100_000,
    "'; DROP TABLE hits; --",
    "%s%n%x",
    "\U0001f600" * 500,
    _token(f"hits:{2**70}"),
    _token("hits:-1"),
    _token(f"disputed:{2**70}"),
    _token("hits:" + "9" * 5000),
)
HOSTILE_INTS = (0, -1, 2**31 - 1, -(2**31))
HOSTILE_INT64S = (2**63 - 1, -(2**63))
HOSTILE_BYTES = (b"", b"\x00", b"\x00" * 32, b"\xff" * 33, bytes(70_000))


def _values(field: Any) -> tuple[object, ...]:
    kind = field.type
    if kind == field.TYPE_STRING:
        return HOSTILE_STRINGS
    if kind == field.TYPE_BYTES:
        return HOSTILE_BYTES
    if kind == field.TYPE_BOOL:
        return (True, False)
    if kind in (field.TYPE_INT64, field.TYPE_SINT64, field.TYPE_SFIXED64):
        return HOSTILE_INTS + HOSTILE_INT64S
    if kind in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32, field.TYPE_ENUM):
        return (*HOSTILE_INTS, 99)
    return ()


def _scalar_paths(message: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every scalar field of `message`'s type, through its message fields (the first
    element of a repeated one): what a client can put in a request."""
    for field in message.DESCRIPTOR.fields:
        path = (*prefix, field.name)
        if field.type == field.TYPE_MESSAGE:
            if field.message_type.full_name.startswith("google.protobuf."):
                continue
            child = getattr(message, field.name)
            if field.is_repeated:
                child = child[0] if len(child) else child.add()
            yield from _scalar_paths(child, path)
        else:
            yield path


def _with(message: Any, path: tuple[str, ...], value: object) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    target = copy
    for name in path[:-1]:
        child = getattr(target, name)
        target = child[0] if hasattr(child, "add") else child
    field = target.DESCRIPTOR.fields_by_name[path[-1]]
    if field.is_repeated:
        del getattr(target, path[-1])[:]
        getattr(target, path[-1]).append(value)
    else:
        setattr(target, path[-1], value)
    return copy


def field_probes(listed: bytes, hit_id: str, case_id: str) -> list[Probe]:
    """Every string and number field of every request, set to each hostile value of its
    type, the rest valid: the check's hash matches the seeded pending entry one bit away
    (a new bit each time, so a REVIEW records a new hit), `hit_id` is a pending hit and
    `case_id` a real case, so the values reach the store where they once failed."""

    def near(n: int) -> pb.Hash:
        value = bytearray(listed)
        value[(n // 8) % 32] ^= 1 << (n % 8)
        return pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=bytes(value), quality=100)

    counter = itertools.count(1)
    bases: dict[str, Callable[[], Any]] = {
        CHECK: lambda: pb.CheckUploadRequest(hashes=[near(next(counter))], content_ref="ok"),
        BATCH: lambda: pb.CheckUploadBatchRequest(
            uploads=[pb.CheckUploadRequest(hashes=[near(next(counter))], content_ref="ok")]
        ),
        SUBMIT: lambda: pb.SubmitCaseRequest(
            hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=bytes(range(32)))]
        ),
        GET_CASE: lambda: pb.GetCaseRequest(case_id=case_id, case_token="t" * 43),
        WITHDRAW: lambda: pb.WithdrawCaseRequest(case_id=case_id, case_token="t" * 43),
        LIST_HITS: lambda: pb.ListHitsRequest(state=pb.HIT_STATE_PENDING, page_size=10),
        RESOLVE: lambda: pb.ResolveHitRequest(
            hit_id=hit_id, verdict=pb.VERDICT_REJECTED, note="not it"
        ),
        DISPUTED: lambda: pb.ListDisputedEntriesRequest(page_size=10),
    }
    probes = []
    for method, base in bases.items():
        for path in _scalar_paths(base()):
            field = _field(base(), path)
            for value in _values(field):
                try:
                    message = _with(base(), path, value)
                except (ValueError, TypeError):  # e.g. an int64 value in an int32 field
                    continue
                family = f"field {method.rsplit('/', 1)[1]}.{'.'.join(path)}"
                probes.append(Probe(family, method, (message.SerializeToString(),)))
    return probes


def _field(message: Any, path: tuple[str, ...]) -> Any:
    for name in path[:-1]:
        child = getattr(message, name)
        message = child[0] if hasattr(child, "add") else child
    return message.DESCRIPTOR.fields_by_name[path[-1]]


# --- every field of every web form -----------------------------------------------------


@dataclass(frozen=True)
class WebProbe:
    """One hostile request to `hashguard web`: `as_moderator` ones are sent signed in."""

    family: str
    path: str
    body: bytes
    content_type: str
    as_moderator: bool = False


def _nested(depth: int) -> bytes:
    return b'{"hashes": ' + b"[" * depth + b"]" * depth + b"}"


def web_probes(csrf: str, hit_id: str) -> list[WebProbe]:
    """Every field of every form and of the victim page's JSON set to each hostile value
    (seeds from issue 15: `"quality": 1e999`, JSON nested 50,000 deep), the other fields
    valid (`csrf` the visitor's or the session's token, `hit_id` a pending hit)."""
    form = "application/x-www-form-urlencoded"
    forms: dict[str, tuple[dict[str, str], bool]] = {
        "/case": ({"csrf": csrf, "case_id": "c", "case_token": "t"}, False),
        "/case/withdraw": ({"csrf": csrf, "case_id": "c", "case_token": "t"}, False),
        "/console/sign-in": ({"csrf": csrf, "key": "hg_x_y"}, False),
        f"/console/hits/{hit_id}": (
            {"csrf": csrf, "verdict": "reject", "note": "no", "vet_partial": "1"},
            True,
        ),
        "/console/sign-out": ({"csrf": csrf}, True),
    }
    probes = []
    strings = [s for s in HOSTILE_STRINGS if len(s) < 20_000] + ["é" * 300]
    for path, (fields, signed_in) in forms.items():
        for name in fields:
            for value in strings:
                body = urllib.parse.urlencode({**fields, name: value}).encode()
                probes.append(
                    WebProbe(f"web form {path.split('/')[-1]}.{name}", path, body, form, signed_in)
                )
        probes.append(WebProbe("web form bytes", path, b"%ff%fe=%00&&=&csrf", form, signed_in))
        probes.append(
            WebProbe(
                "web form multipart",
                path,
                b"--x\r\nbroken",
                "multipart/form-data; boundary=x",
                signed_in,
            )
        )
    good: dict[str, object] = {"algorithm": "sha256", "hex": "ab" * 32, "quality": 0}
    values: list[object]
    for name, values in (
        ("algorithm", ["", "pdq\x00", "x" * 5000, 7, None, ["pdq"]]),
        ("hex", ["", "zz", "00" * 31, "ab" * 5000, 12, None]),
        ("quality", [1e999, -1e999, 2**70, -1, 101, "50", None, [1], float("nan")]),
    ):
        for odd in values:
            item = {**good, name: odd}
            body = json.dumps({"hashes": [item]}).encode()
            probes.append(WebProbe(f"web json {name}", "/api/cases", body, "application/json"))
    for body in (
        _nested(50_000),
        b"[" * 50_000,
        b'{"hashes": "x"}',
        b'{"hashes": [1, 2]}',
        b"null",
        b"\xff\xfe",
        b'{"hashes": [' + b"{}," * 1000 + b"{}]}",
    ):
        probes.append(WebProbe("web json shape", "/api/cases", body, "application/json"))
    return probes
