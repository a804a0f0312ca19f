"""The `hashguard web` application: victims' pages, the moderators' console and their
static files, with headers that keep every page to its own origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from service.config import WebSettings
from service.web import console, victim
from service.web.backend import Backend
from service.web.context import WebContext

STATIC = Path(__file__).resolve().parent / "static"

# Everything from this origin only: no CDNs, no third-party fonts or trackers, no inline
# scripts, no framing. Photos are read with blob: URLs inside the page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            # Pages can show a case's secret code or a moderator's queue: never cache them.
            response.headers["Cache-Control"] = "no-store"
        return response


def create_app(settings: WebSettings, backend: Backend | None = None) -> Starlette:
    backend = backend or Backend(settings.web_target, settings.web_submitter_key)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        backend.close()

    app = Starlette(
        routes=[
            *victim.ROUTES,
            *console.ROUTES,
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
    app.state.web = WebContext.create(settings, backend)
    return app
