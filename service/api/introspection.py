"""Health (Check, Watch and List) and server reflection (v1 and v1alpha) for the gRPC port.

grpcio-health-checking's servicer lists `List` in the service but answers UNIMPLEMENTED,
and grpcio-reflection serves only `grpc.reflection.v1alpha`, while current grpcurl and
Postman ask for `grpc.reflection.v1` first. Both gaps are filled here, with the
libraries' own servicers underneath: v1 is the same protocol as v1alpha under another
package name (the messages are identical on the wire), so the v1 service is the v1alpha
servicer registered under the v1 name, and its proto file is v1alpha's with the package
renamed, so reflection can describe it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

PID_TRAILER = "hashguard-pid"
REFLECTION_V1_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


# types-grpcio-health-checking predates List's messages.
_health_messages: Any = health_pb2


class HealthServicer(health.aio.HealthServicer):
    """The library's servicer plus `List`: every registered service and its status, read
    from the same map `Check` answers from, so the two never disagree. `Check` names the
    process that answered in its trailing metadata (`hashguard-pid`): with `serve
    --processes N`, which of them a connection reached."""

    async def Check(self, request: Any, context: Any) -> Any:
        reply = await super().Check(request, context)
        context.set_trailing_metadata(((PID_TRAILER, str(os.getpid())),))
        return reply

    async def List(self, request: Any, context: Any) -> Any:
        statuses: dict[str, int] = vars(self)["_server_status"]
        return _health_messages.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in sorted(statuses.items())
            }
        )


def _add_v1_descriptor() -> None:
    """Put grpc/reflection/v1/reflection.proto in the default pool (once), made from
    v1alpha's file with the package renamed: the messages are field for field the same."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = _V1_FILE
    proto.package = "grpc.reflection.v1"
    proto.options.Clear()
    pool.Add(proto)


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection under v1 and v1alpha, listing `service_names`, both reflection
    services and nothing else."""
    _add_v1_descriptor()
    names = (*service_names, REFLECTION_V1_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1_NAME, {"ServerReflectionInfo": handler}
            ),
        )
    )
