"""The moderators' console: sign in with a moderator key, review the queue of pending
hits (newest first), confirm or reject with a note. Every call goes to ReviewService with
the key sealed in the moderator's session, so the service decides what the key may see
(its tenant's hits, once the service scopes them)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from service.web.backend import PageError
from service.web.context import EXPIRED, WebContext, web_context
from service.web.security import Session, same_token

NOTE_MAX = 500
DONE = {"confirmed": "queue.done_confirmed", "rejected": "queue.done_rejected"}  # catalogue keys


def _to_sign_in() -> Response:
    return RedirectResponse("/console/sign-in", status_code=303)


async def sign_in_page(request: Request) -> Response:
    ctx = web_context(request)
    if ctx.session(request):
        return RedirectResponse("/console", status_code=303)
    return ctx.render(request, "sign_in.html")


async def sign_in(request: Request) -> Response:
    ctx = web_context(request)
    form = await request.form()
    key = str(form.get("key", "")).strip()
    try:
        ctx.check_public_token(request, str(form.get("csrf", "")))
        if not key:
            raise PageError("err.enter_key")
        await run_in_threadpool(ctx.backend.check_moderator, key)
    except PageError as exc:
        return ctx.render(request, "sign_in.html", {"error": exc}, exc.status)
    response = RedirectResponse("/console", status_code=303)
    ctx.start_session(response, key)
    return response


async def sign_out(request: Request) -> Response:
    ctx = web_context(request)
    session = ctx.session(request)
    form = await request.form()
    if session and not same_token(session.csrf, str(form.get("csrf", ""))):
        return ctx.render(request, "error.html", {"error": PageError(EXPIRED, 403)}, 403, session)
    response = _to_sign_in()
    ctx.end_session(response, session)
    return response


async def queue(request: Request) -> Response:
    ctx = web_context(request)
    session = ctx.session(request)
    if session is None:
        return _to_sign_in()
    try:
        hits = await run_in_threadpool(ctx.backend.pending_hits, session.moderator_key)
        counts = await run_in_threadpool(ctx.backend.hit_counts, session.moderator_key)
    except PageError as exc:
        return _console_error(ctx, request, session, exc)
    done = DONE.get(request.query_params.get("done", ""))
    return ctx.render(
        request,
        "queue.html",
        {
            "hits": hits,
            "counts": counts,
            "done": done,
        },
        session=session,
    )


async def resolve(request: Request) -> Response:
    ctx = web_context(request)
    session = ctx.session(request)
    if session is None:
        return _to_sign_in()
    form = await request.form()
    try:
        verdict, note = _verdict(session, form)
        await run_in_threadpool(
            ctx.backend.resolve_hit,
            session.moderator_key,
            request.path_params["hit_id"],
            verdict == "confirm",
            note,
            form.get("vet_partial") == "1",
        )
    except PageError as exc:
        return _console_error(ctx, request, session, exc)
    return RedirectResponse(f"/console?done={verdict}ed", status_code=303)


async def disputed(request: Request) -> Response:
    """DISPUTED entries, for admins: a moderator's key is told plainly that it may not
    see them (the service answers PERMISSION_DENIED)."""
    ctx = web_context(request)
    session = ctx.session(request)
    if session is None:
        return _to_sign_in()
    try:
        entries = await run_in_threadpool(ctx.backend.disputed_entries, session.moderator_key)
    except PageError as exc:
        if exc.status != 403:
            return _console_error(ctx, request, session, exc)
        return ctx.render(request, "disputed.html", {"allowed": False}, session=session)
    return ctx.render(
        request, "disputed.html", {"allowed": True, "entries": entries}, session=session
    )


def _verdict(session: Session, form: FormData) -> tuple[str, str]:
    if not same_token(session.csrf, str(form.get("csrf", ""))):
        raise PageError(EXPIRED, 403)
    verdict = str(form.get("verdict", ""))
    if verdict not in ("confirm", "reject"):
        raise PageError("err.choose_verdict")
    note = str(form.get("note", "")).strip()
    if len(note) > NOTE_MAX:
        raise PageError("err.note_too_long", most=NOTE_MAX)
    return verdict, note


def _console_error(ctx: WebContext, request: Request, session: Session, exc: PageError) -> Response:
    if exc.status == 401:
        response = _to_sign_in()  # the key is no longer known (revoked): sign in again
        ctx.end_session(response, session)
        return response
    return ctx.render(request, "error.html", {"error": exc}, exc.status, session)


ROUTES = [
    Route("/console", queue, methods=["GET"]),
    Route("/console/sign-in", sign_in_page, methods=["GET"]),
    Route("/console/sign-in", sign_in, methods=["POST"]),
    Route("/console/sign-out", sign_out, methods=["POST"]),
    Route("/console/hits/{hit_id}", resolve, methods=["POST"]),
    Route("/console/disputed", disputed, methods=["GET"]),
]
