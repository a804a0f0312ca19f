"""The gRPC client of HashGuard's public contract, for the CLI and the web tier: stubs on one
channel (TLS in service.client.tls). Nothing here imports the server package service.api."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc

from service.client.tls import ClientTls, open_channel
from service.domain import HashValue

# Videos up to this size go whole in CheckUpload (under the server's default 20 MiB
# max_message_bytes, with room); larger ones stream through CheckVideo in chunks.
ONE_MESSAGE_VIDEO_BYTES = 8 * 1024 * 1024
VIDEO_CHUNK_BYTES = 1024 * 1024
# A video check decodes the whole file (the server's own limit: 300 s by default).
VIDEO_TIMEOUT = 600.0


class Client:
    """Stubs for the three services on one channel, with the API key attached."""

    def __init__(
        self,
        target: str,
        key: str | None = None,
        timeout: float = 30.0,
        tls: ClientTls | None = None,
    ) -> None:
        self.channel = open_channel(
            target, tls, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
        )
        self.metadata = (("authorization", f"Bearer {key}"),) if key else ()
        self.timeout = timeout
        self.match = pb_grpc.MatchServiceStub(self.channel)
        self.submission = pb_grpc.SubmissionServiceStub(self.channel)
        self.review = pb_grpc.ReviewServiceStub(self.channel)

    def check_video(
        self, path: str | Path, content_ref: str = "", timeout: float | None = None
    ) -> pb.CheckUploadResponse:
        """Check a video file: whole in CheckUpload's `video` when it is small, else
        streamed through CheckVideo. A check decodes the whole video, so its deadline
        is VIDEO_TIMEOUT unless `timeout` says otherwise."""
        if os.stat(path).st_size <= ONE_MESSAGE_VIDEO_BYTES:
            return self.check_video_bytes(Path(path).read_bytes(), content_ref, timeout)
        return self.check_video_stream(path, content_ref, timeout)

    def check_video_bytes(
        self, data: bytes, content_ref: str = "", timeout: float | None = None
    ) -> pb.CheckUploadResponse:
        """A video in one CheckUpload (up to the server's max_message_bytes)."""
        reply: pb.CheckUploadResponse = self.match.CheckUpload(
            pb.CheckUploadRequest(video=data, content_ref=content_ref),
            metadata=self.metadata,
            timeout=timeout or VIDEO_TIMEOUT,
        )
        return reply

    def check_video_stream(
        self,
        path: str | Path,
        content_ref: str = "",
        timeout: float | None = None,
        chunk_bytes: int = VIDEO_CHUNK_BYTES,
    ) -> pb.CheckUploadResponse:
        """A video file of any size streamed through CheckVideo, read a chunk at a time
        (the file is never held whole here); its size goes first, so a file over the
        server's max_video_bytes is refused before its bytes are sent."""

        def requests() -> Iterator[pb.CheckVideoRequest]:
            with open(path, "rb") as handle:
                total = os.fstat(handle.fileno()).st_size
                yield pb.CheckVideoRequest(content_ref=content_ref, total_bytes=total)
                while chunk := handle.read(chunk_bytes):
                    yield pb.CheckVideoRequest(chunk=chunk)

        reply: pb.CheckUploadResponse = self.match.CheckVideo(
            requests(), metadata=self.metadata, timeout=timeout or VIDEO_TIMEOUT
        )
        return reply

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def hash_to_pb(value: HashValue) -> pb.Hash:
    """A hash as the public contract carries it (its type names its enum value)."""
    return pb.Hash(
        algorithm=value.algorithm.proto_name,
        value=value.value,
        quality=value.quality or 0,
    )
