"""The `hashguard web` application: victims' pages, the moderators' console and their
static files, with headers that keep every page to its own origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from service.client.tls import ClientTls
from service.config import WebSettings
from service.web import console, i18n, victim
from service.web.backend import Backend
from service.web.context import WebContext

STATIC = Path(__file__).resolve().parent / "static"

# Everything from this origin only: no CDNs, no third-party fonts or trackers, no inline
# scripts, no framing. Photos are decoded in the page's memory, never shown or fetched;
# videos are played from blob: URLs of the chosen file (media-src), which stay in the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src blob:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


# Every request body these pages take is small (fingerprints, a form): 256 KiB is room for
# about 1800 fingerprints and no room for an image.
MAX_BODY_BYTES = 256 * 1024


class BodyLimit:
    """Refuse a request body before it is read when it is, or may be, too large: over
    MAX_BODY_BYTES by its Content-Length, or without one (chunked), which browsers never
    send to these pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is None or not declared.isdigit():
                await PlainTextResponse("Length required", 411)(scope, receive, send)
                return
            if int(declared) > MAX_BODY_BYTES:
                lang = i18n.language(Request(scope))
                refused = i18n.translate(lang, "err.body_too_large")
                await JSONResponse({"error": refused}, 413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders(BaseHTTPMiddleware):
    """Headers on every answer (and HSTS when the pages are served over HTTPS); a POST
    from another site's page, by its Origin header, is refused before its form is read
    (defence in depth: forms also carry CSRF tokens and cookies are SameSite=Strict)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method == "POST" and not same_origin(request):
            words = i18n.translate(i18n.language(request), "err.other_site")
            response: Response = PlainTextResponse(words, 403)
        else:
            response = await call_next(request)
        if request.app.state.web.settings.web_cookie_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            # Pages can show a case's secret code or a moderator's queue: never cache them.
            response.headers["Cache-Control"] = "no-store"
        return response


def same_origin(request: Request) -> bool:
    """True unless the request's Origin names another site. The site is the Host the
    browser sent, or the first X-Forwarded-Host a proxy that rewrites Host sets. No
    Origin, or `null` (what browsers send for a form under this site's no-referrer
    policy, and from sandboxed frames), leaves the decision to the CSRF token."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    hosts = {request.headers.get("host", "")}
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip())
    return urlsplit(origin).netloc in hosts - {""}


async def healthz(_request: Request) -> Response:
    """For probes: the process serves pages. It does not call the service, so a slow
    service never restarts the pages, which tell visitors themselves when it is down."""
    return PlainTextResponse("ok")


def service_tls(settings: WebSettings) -> ClientTls:
    """How the web tier dials the service: the --web-tls-* settings as the CLI's --tls*."""
    return ClientTls(
        bool(settings.web_tls),
        settings.web_tls_ca,
        settings.web_tls_cert,
        settings.web_tls_key,
        settings.web_tls_server_name,
        flags="--web-tls",
    )


def create_app(settings: WebSettings) -> Starlette:
    backend = Backend(settings.web_target, settings.web_submitter_key, tls=service_tls(settings))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        backend.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            *victim.ROUTES,
            *console.ROUTES,
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit)],
        lifespan=lifespan,
    )
    app.state.web = WebContext.create(settings, backend)
    return app
