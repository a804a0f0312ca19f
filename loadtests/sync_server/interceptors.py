"""The pre-asyncio server's interceptor (loadtests only). One for every call, unary or
streaming: it maps domain errors to
gRPC statuses with their message, turns anything unexpected into INTERNAL without
leaking a stack trace to the client, and records request counts and latency. Request
bytes that do not parse as the method's message become INVALID_ARGUMENT (grpc itself
would answer INTERNAL)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from service import metrics
from service.api.interceptors import _parsed, _tolerant
from service.errors import HashGuardError

log = logging.getLogger("hashguard.api")


class _Outcome:
    """The status code a call ended with, filled in by the wrapper."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK


def _abort(context: grpc.ServicerContext, outcome: _Outcome, exc: BaseException) -> None:
    if isinstance(exc, HashGuardError):
        outcome.code = grpc.StatusCode[exc.status]
        if exc.trailers():
            context.set_trailing_metadata(exc.trailers())
        context.abort(outcome.code, str(exc))
    ref = uuid.uuid4().hex[:12]
    # The traceback names code paths only; request bodies (images) are never logged.
    log.error("internal error ref=%s", ref, exc_info=exc)
    outcome.code = grpc.StatusCode.INTERNAL
    context.abort(outcome.code, f"internal error (reference {ref}); see the server log")


def _record(method: str, outcome: _Outcome, started: float) -> None:
    metrics.REQUESTS.labels(method, outcome.code.name).inc()
    metrics.LATENCY.labels(method).observe(time.perf_counter() - started)


@contextmanager
def _guarded(method: str, context: grpc.ServicerContext) -> Iterator[None]:
    """Map errors raised inside the block and record the call's outcome."""
    started, outcome = time.perf_counter(), _Outcome()
    try:
        yield
    except Exception as exc:
        if isinstance(exc, grpc.RpcError) and not context.is_active():
            # The client hung up while a stream was waiting for its next request:
            # nobody is left to answer, and nothing went wrong here.
            outcome.code = grpc.StatusCode.CANCELLED
            return
        if _is_abort(exc, context):
            outcome.code = _code(context) or grpc.StatusCode.UNKNOWN
            raise
        _abort(context, outcome, exc)
    finally:
        _record(method, outcome, started)


def _requests(request: Any, streaming: bool) -> Any:
    """The request, or for a request stream an iterator that refuses malformed items."""
    return (_parsed(item) for item in request) if streaming else _parsed(request)


def _wrap_unary_response(
    method: str, behavior: Callable[..., Any], streaming: bool
) -> Callable[..., Any]:
    def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
        with _guarded(method, context):
            return behavior(_requests(request, streaming), context)

    return wrapper


def _wrap_stream_response(
    method: str, behavior: Callable[..., Any], streaming: bool
) -> Callable[..., Any]:
    def wrapper(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with _guarded(method, context):
            yield from behavior(_requests(request, streaming), context)

    return wrapper


def _is_abort(exc: Exception, context: grpc.ServicerContext) -> bool:
    """context.abort() (e.g. in the health servicer) raises a bare Exception after setting
    the code: let it through unchanged."""
    return type(exc) is Exception and _code(context) not in (None, grpc.StatusCode.OK)


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]  # grpc>=1.38
    return code


class ErrorAndMetricsInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        common = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary_response(method, handler.unary_unary, streaming=False), **common
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary_response(method, handler.stream_unary, streaming=True), **common
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream_response(method, handler.unary_stream, streaming=False), **common
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream_response(method, handler.stream_stream, streaming=True), **common
            )
        return handler
