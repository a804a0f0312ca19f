"""The gRPC client of HashGuard's public contract, for the CLI and the web tier: stubs on one
channel (TLS in service.client.tls). Nothing here imports the server package service.api."""

from __future__ import annotations

from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc

from service.client.tls import ClientTls, open_channel
from service.domain import HashValue


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
