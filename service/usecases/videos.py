"""Checking an uploaded video's bytes: in one CheckUpload (`video`), or streamed in
chunks through CheckVideo. Either way the bytes are held in this process's memory for
the call only (never written to disk, stored or logged: docs/SECURITY.md says why),
within the decode budget, which counts the bytes held and then what the decoder
allocates for the frame size the header declares (service.media.video_cost). MD5,
SHA-256 (as media.video_hashes.file_digests, on the buffer in place) and the frame
queries are computed in the runtime's pool; the wall-time limit
and the client going away stop the decoding; the check itself is Checks.check_video.

A stream's size is checked before anything past it is buffered: against the declared
`total_bytes` at the first message, else chunk by chunk. A stream that stalls is ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from service.access.limits import DecodeShare
from service.config import Settings
from service.domain import Principal
from service.errors import Cancelled, InvalidInput, LimitExceeded, QuotaExceeded
from service.media.video import MemoryReader, VideoLimits
from service.media.video_cost import video_decode_cost
from service.media.video_hashes import QueryFrames, check_queries
from service.runtime import Runtime
from service.usecases.check import MAX_CONTENT_REF, CheckResult, Checks
from service.usecases.guards import text

# A CheckVideo stream with no message for this long is ended (its bytes held memory).
STALL_SECONDS = 30.0
# bytearray grows by an eighth beyond what it holds (CPython's over-allocation).
GROWTH = 9 / 8


@dataclass(frozen=True, slots=True)
class VideoPart:
    """One message of a CheckVideo stream (the first carries content_ref, total_bytes)."""

    content_ref: str
    total_bytes: int
    chunk: bytes


@dataclass(frozen=True, slots=True)
class HashedVideo:
    md5: bytes
    sha256: bytes
    frames: QueryFrames


def video_limits(settings: Settings) -> VideoLimits:
    return VideoLimits(
        max_bytes=settings.max_video_bytes,
        max_seconds=settings.max_video_seconds,
        max_wall_seconds=settings.max_video_decode_seconds,
    )


class Videos:
    def __init__(self, runtime: Runtime, checks: Checks) -> None:
        self.runtime = runtime
        self.checks = checks

    async def check_bytes(self, principal: Principal, data: bytes, content_ref: str) -> CheckResult:
        """A video sent whole in CheckUpload."""
        self.checks.admit_video(principal)
        text("content_ref", content_ref, MAX_CONTENT_REF)
        self._check_size(principal, len(data))
        with self.runtime.limits.decode_share(principal, "video") as share:
            await self._take(share, len(data))
            hashed = await self._hash(principal, data, share)
        return await self.checks.check_video(
            principal, hashed.md5, hashed.sha256, hashed.frames, content_ref
        )

    async def check_stream(
        self,
        principal: Principal,
        parts: AsyncIterator[VideoPart],
        gone: Callable[[], bool] = lambda: False,
    ) -> tuple[str, CheckResult]:
        """A CheckVideo stream: (content_ref, result) once the last chunk is in. A
        client that hangs up mid-stream looks like a stream that ended; `gone` tells
        the two apart, so a cut-off upload is not decoded."""
        self.checks.admit_video(principal)
        with self.runtime.limits.decode_share(principal, "video") as share:
            content_ref, buffer = await self._receive(principal, parts, share)
            if gone():
                raise Cancelled("the client went away before the video's last chunk")
            hashed = await self._hash(principal, buffer, share)
            del buffer
        result = await self.checks.check_video(
            principal, hashed.md5, hashed.sha256, hashed.frames, content_ref
        )
        return content_ref, result

    # -- receiving -----------------------------------------------------------------------

    async def _receive(
        self, principal: Principal, parts: AsyncIterator[VideoPart], share: DecodeShare
    ) -> tuple[str, bytearray]:
        first = await _next(parts)
        if first is None:
            raise InvalidInput("the CheckVideo stream carried no message: send the video's bytes")
        content_ref, declared = first.content_ref, first.total_bytes
        text("content_ref", content_ref, MAX_CONTENT_REF)
        if declared < 0:
            raise InvalidInput(f"total_bytes must not be negative, got {declared}")
        if declared:
            self._check_size(principal, declared)
            await self._take(share, declared)
            buffer = bytearray(declared)
        else:
            buffer = bytearray()
        size = 0
        part: VideoPart | None = first
        while part is not None:
            if part is not first and (part.content_ref or part.total_bytes):
                raise InvalidInput(
                    "content_ref and total_bytes go in the first CheckVideo message only"
                )
            chunk, end = part.chunk, size + len(part.chunk)
            if declared:
                if end > declared:
                    raise InvalidInput(
                        f"the stream sent more than the {declared:,} bytes total_bytes declared"
                    )
                buffer[size:end] = chunk
            else:
                self._check_size(principal, end)
                await self._take(share, int(len(chunk) * GROWTH) + 1)
                buffer += chunk
            size = end
            part = await _next(parts)
        if declared and size != declared:
            raise InvalidInput(
                f"the stream ended after {size:,} of the {declared:,} bytes total_bytes declared"
            )
        if size == 0:
            raise InvalidInput("video is empty: the CheckVideo stream carried no bytes")
        return content_ref, buffer

    def _check_size(self, principal: Principal, size: int) -> None:
        limit = self.runtime.settings.max_video_bytes
        if size > limit:
            raise self.runtime.limits.refused(
                principal,
                QuotaExceeded(
                    "video_bytes",
                    f"video is {size:,} bytes or more; this server checks videos of up to "
                    f"{limit:,} bytes (max_video_bytes): send its hashes (video-md5, vpdq) "
                    "instead",
                ),
            )

    async def _take(self, share: DecodeShare, cost: int) -> None:
        """Budget for bytes about to be held: taken on the loop when free, else waited
        for in the pool (the loop never blocks)."""
        if not share.try_take(cost):
            await self.runtime.blocking(share.take, cost)

    # -- hashing -------------------------------------------------------------------------

    async def _hash(
        self, principal: Principal, data: bytes | bytearray, share: DecodeShare
    ) -> HashedVideo:
        """Digests and frame queries in the pool. When the client goes away, decoding
        stops at its next packet, and the budget is handed back only once it has."""
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            self.runtime.pool, self._hash_blocking, principal, data, share, stop
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait([work])
            raise

    def _hash_blocking(
        self,
        principal: Principal,
        data: bytes | bytearray,
        share: DecodeShare,
        stop: threading.Event,
    ) -> HashedVideo:
        limits = video_limits(self.runtime.settings)

        def on_header(width: int, height: int) -> None:
            share.take(video_decode_cost(width, height, limits))

        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        sha256 = hashlib.sha256(data).digest()
        source = data if isinstance(data, bytes) else io.BufferedReader(MemoryReader(data))
        try:
            frames = check_queries(source, limits, on_header=on_header, cancelled=stop.is_set)
        except LimitExceeded as exc:
            raise self.runtime.limits.refused(principal, exc) from None
        return HashedVideo(md5, sha256, frames)


async def _next(parts: AsyncIterator[VideoPart]) -> VideoPart | None:
    """The stream's next message, None at its end; a stall ends the call."""
    try:
        return await asyncio.wait_for(anext(parts, None), STALL_SECONDS)
    except TimeoutError:
        raise QuotaExceeded(
            "video_stall",
            f"the CheckVideo stream sent nothing for {STALL_SECONDS:g} s; send the video "
            "again, in chunks of about 1 MiB",
        ) from None
