"""Victims' pages: hash photos in the browser and submit the hashes; follow or withdraw a
case with its number and secret code. No page here ever receives image bytes: the
submit endpoint takes JSON fingerprints only, and refuses anything large."""

from __future__ import annotations

import json
import math

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.media.video import VideoLimits
from service.web.backend import PageError, busy, parse_browser_hashes
from service.web.context import WebContext, web_context

MOST_HASHES = 1000  # the service's default --max-hashes-per-case


# The page fingerprints videos within the service's own limits (service/media/video.py).
VIDEO_LIMITS = VideoLimits()


async def submit_page(request: Request) -> Response:
    ctx = web_context(request)
    return ctx.render(
        request, "submit.html", {"open": ctx.backend.accepts_submissions, "video": VIDEO_LIMITS}
    )


async def submit_hashes(request: Request) -> Response:
    """JSON in, JSON out; the page's script shows the answer."""
    ctx = web_context(request)
    try:
        ctx.check_public_token(request, request.headers.get("x-csrf-token"))
        body = await request.body()  # at most MAX_BODY_BYTES: app.BodyLimit
        try:
            hashes = parse_browser_hashes(json.loads(body).get("hashes"), MOST_HASHES)
        except (ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested deep
            raise PageError("err.bad_form") from None
        wait = ctx.visitors.take(request)
        if wait:
            raise busy("err.visitor_busy", wait)
        case = await run_in_threadpool(ctx.backend.submit_case, hashes)
    except PageError as exc:
        retry = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else {}
        return ctx.error_json(request, exc, **retry)
    return JSONResponse(
        {"case_id": case.case_id, "case_token": case.case_token, "entry_count": case.entry_count}
    )


async def status_page(request: Request) -> Response:
    return web_context(request).render(request, "status.html")


async def status(request: Request) -> Response:
    ctx = web_context(request)
    form = await request.form()
    case_id, token = str(form.get("case_id", "")), str(form.get("case_token", ""))
    try:
        ctx.check_public_token(request, str(form.get("csrf", "")))
        _take_case_read(ctx, request)
        case = await run_in_threadpool(ctx.backend.case_status, case_id, token)
    except PageError as exc:
        return ctx.render(request, "status.html", {"error": exc, "case_id": case_id}, exc.status)
    return ctx.render(request, "status.html", {"case": case, "case_token": token})


async def withdraw(request: Request) -> Response:
    ctx = web_context(request)
    form = await request.form()
    case_id, token = str(form.get("case_id", "")), str(form.get("case_token", ""))
    try:
        ctx.check_public_token(request, str(form.get("csrf", "")))
        _take_case_read(ctx, request)
        count = await run_in_threadpool(ctx.backend.withdraw_case, case_id, token)
    except PageError as exc:
        return ctx.render(request, "status.html", {"error": exc, "case_id": case_id}, exc.status)
    return ctx.render(request, "withdrawn.html", {"case_id": case_id, "count": count})


def _take_case_read(ctx: WebContext, request: Request) -> None:
    """Each look-up costs the service a store read and an audit row (case.read): a
    visitor may make --web-case-reads-per-visitor-hour of them."""
    wait = ctx.case_reads.take(request)
    if wait:
        raise busy("err.case_reads_busy", wait)


ROUTES = [
    Route("/", submit_page, methods=["GET"]),
    Route("/api/cases", submit_hashes, methods=["POST"]),
    Route("/case", status_page, methods=["GET"]),
    Route("/case", status, methods=["POST"]),
    Route("/case/withdraw", withdraw, methods=["POST"]),
]
