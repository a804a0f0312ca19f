"""One grpc.aio server interceptor for every call, unary or streaming: it maps domain
errors to gRPC statuses with their message, turns anything unexpected into INTERNAL
without leaking a stack trace to the client, and records request counts and latency.
Request bytes that do not parse as the method's message become INVALID_ARGUMENT (grpc
itself would answer INTERNAL). A client that hangs up while its call is working is
counted as CANCELLED, not logged as an error; one that hangs up while a stream waits
for its next request looks to grpc.aio like a stream the client closed (its requests
just end), so that stream is counted OK.

Every handler it wraps is a coroutine or an async generator (ours, and grpc's asyncio
health and reflection services); a sync handler would block the event loop, so it is
passed through untouched and unmeasured."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, TypeAlias

import grpc

from service import metrics
from service.errors import HashGuardError, InvalidInput

log = logging.getLogger("hashguard.api")

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"


class _Outcome:
    """The status code a call ended with, filled in by the wrapper."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK


async def _abort(context: Context, outcome: _Outcome, exc: Exception) -> None:
    if isinstance(exc, HashGuardError):
        outcome.code = grpc.StatusCode[exc.status]
        await context.abort(outcome.code, str(exc), exc.trailers() or ())
    ref = uuid.uuid4().hex[:12]
    # The traceback names code paths only; request bodies (images) are never logged.
    log.error("internal error ref=%s", ref, exc_info=exc)
    outcome.code = grpc.StatusCode.INTERNAL
    await context.abort(outcome.code, f"internal error (reference {ref}); see the server log")


def _record(method: str, outcome: _Outcome, started: float) -> None:
    _requests_child(method, outcome.code.name).inc()
    _latency_child(method).observe(time.perf_counter() - started)


# A metric's labelled child looked up once: `labels()` costs a lock and a few dict
# lookups (about 4 us), twice on every call. Methods and codes are few.
@cache
def _requests_child(method: str, code: str) -> Any:
    return metrics.REQUESTS.labels(method, code)


@cache
def _latency_child(method: str) -> Any:
    return metrics.LATENCY.labels(method)


@asynccontextmanager
async def _guarded(method: str, context: Context) -> AsyncIterator[None]:
    """Map errors raised inside the block and record the call's outcome."""
    started, outcome = time.perf_counter(), _Outcome()
    try:
        yield
    except asyncio.CancelledError:
        # grpc cancels the call's task when the client hangs up (or its deadline
        # passes): nobody is left to answer, and nothing went wrong here.
        outcome.code = grpc.StatusCode.CANCELLED
        raise
    except grpc.aio.AbortError:  # context.abort() by a handler (e.g. health NOT_FOUND)
        outcome.code = context.code() or grpc.StatusCode.UNKNOWN
        raise
    except Exception as exc:
        if context.cancelled():
            outcome.code = grpc.StatusCode.CANCELLED
            return
        await _abort(context, outcome, exc)
    finally:
        _record(method, outcome, started)


class _Malformed:
    """Stands in for a request whose bytes did not parse, until the call can refuse it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError, or whatever a parser raises
            return _Malformed(f"request is not a valid message for this method: {exc}")

    return parse


def _parsed(request: Any) -> Any:
    if isinstance(request, _Malformed):
        raise InvalidInput(request.reason)
    return request


async def _parsed_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in requests:
        yield _parsed(item)


def _requests(request: Any, streaming: bool) -> Any:
    """The request, or for a request stream an iterator that refuses malformed items."""
    return _parsed_stream(request) if streaming else _parsed(request)


def _wrap_unary_response(
    method: str, behavior: Callable[..., Any], streaming: bool
) -> Callable[..., Any]:
    async def wrapper(request: Any, context: Context) -> Any:
        async with _guarded(method, context):
            return await behavior(_requests(request, streaming), context)

    return wrapper


def _wrap_stream_response(
    method: str, behavior: Callable[..., Any], streaming: bool
) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
            async with _guarded(method, context):
                async for response in behavior(_requests(request, streaming), context):
                    yield response

        return generator

    async def writer(request: Any, context: Context) -> None:  # answers with context.write
        async with _guarded(method, context):
            await behavior(_requests(request, streaming), context)

    return writer


def _is_async(behavior: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


def _wrapped(method: str, handler: Handler) -> Handler:
    common = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary and _is_async(handler.unary_unary):
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary_response(method, handler.unary_unary, streaming=False), **common
        )
    if handler.stream_unary and _is_async(handler.stream_unary):
        return grpc.stream_unary_rpc_method_handler(
            _wrap_unary_response(method, handler.stream_unary, streaming=True), **common
        )
    if handler.unary_stream and _is_async(handler.unary_stream):
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream_response(method, handler.unary_stream, streaming=False), **common
        )
    if handler.stream_stream and _is_async(handler.stream_stream):
        return grpc.stream_stream_rpc_method_handler(
            _wrap_stream_response(method, handler.stream_stream, streaming=True), **common
        )
    return handler


class ErrorAndMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method's handler once and reuses the wrapper for every call to it."""

    def __init__(self) -> None:
        self._wrappers: dict[int, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        known = self._wrappers.get(id(handler))
        if known is not None and known[0] is handler:
            return known[1]
        wrapper = _wrapped(handler_call_details.method.rsplit("/", 1)[-1], handler)
        self._wrappers[id(handler)] = (handler, wrapper)
        return wrapper
