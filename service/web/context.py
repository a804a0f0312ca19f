"""What every page handler shares: settings, the backend, sessions, templates, cookies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from service.config import WebSettings
from service.web import i18n
from service.web.backend import Backend, PageError
from service.web.security import SESSION_SECONDS, Session, SessionBox, new_token, same_token
from service.web.visitors import VisitorLimit

TEMPLATES = Path(__file__).resolve().parent / "templates"
EXPIRED = "err.expired"  # a catalogue key (service/web/locales)


def web_context(request: Request) -> WebContext:
    """The WebContext create_app stored on the application."""
    ctx: WebContext = request.app.state.web
    return ctx


@dataclass
class WebContext:
    settings: WebSettings
    backend: Backend
    sessions: SessionBox
    templates: Jinja2Templates
    visitors: VisitorLimit
    case_reads: VisitorLimit

    @classmethod
    def create(cls, settings: WebSettings, backend: Backend) -> WebContext:
        templates = Jinja2Templates(directory=str(TEMPLATES))
        templates.env.globals["content_link"] = _content_link(settings.web_content_url)
        templates.env.filters["visible"] = visible
        templates.env.filters["seconds"] = i18n.seconds
        header = settings.web_client_ip_header
        visitors = VisitorLimit(settings.web_cases_per_visitor_hour, header)
        case_reads = VisitorLimit(settings.web_case_reads_per_visitor_hour, header)
        sessions = SessionBox(settings.web_session_secret)
        return cls(settings, backend, sessions, templates, visitors, case_reads)

    # -- cookies: __Host- names pin them to this host and path / when they are Secure --

    def _cookie_name(self, name: str) -> str:
        return f"__Host-{name}" if self.settings.web_cookie_secure else name

    @property
    def session_cookie(self) -> str:
        return self._cookie_name("hg_session")

    @property
    def csrf_cookie(self) -> str:
        return self._cookie_name("hg_csrf")

    def set_cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=bool(self.settings.web_cookie_secure),
            httponly=True,
            samesite="strict",
        )

    def check_public_token(self, request: Request, given: str | None) -> None:
        """Public forms and calls: the token must equal the visitor's CSRF cookie."""
        if not same_token(request.cookies.get(self.csrf_cookie), given):
            raise PageError(EXPIRED, 403)

    def session(self, request: Request) -> Session | None:
        return self.sessions.open(request.cookies.get(self.session_cookie))

    def start_session(self, response: Response, moderator_key: str) -> None:
        sealed, _ = self.sessions.seal(moderator_key)
        self.set_cookie(response, self.session_cookie, sealed, SESSION_SECONDS)

    def end_session(self, response: Response, session: Session | None = None) -> None:
        """Delete the cookie and, given the session, refuse it here from now on."""
        if session is not None:
            self.sessions.end(session)
        response.delete_cookie(
            self.session_cookie,
            path="/",
            secure=bool(self.settings.web_cookie_secure),
            httponly=True,
            samesite="strict",
        )

    # -- pages ------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        status: int = 200,
        session: Session | None = None,
    ) -> Response:
        """A page in the visitor's language with a CSRF token for its forms: the session's
        on console pages, else the public double-submit cookie's (set here when the
        visitor has none yet). A PageError in `context["error"]` is put in words here."""
        existing = request.cookies.get(self.csrf_cookie)
        csrf = session.csrf if session else (existing or new_token())
        lang = i18n.language(request)
        context = dict(context or {})
        if isinstance(context.get("error"), PageError):
            context["error"] = context["error"].text(lang)
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "csrf": csrf,
                "session": session,
                "lang": lang,
                "t": i18n.Translator(lang),
                "script_messages": i18n.script_messages(lang),
                **context,
            },
            status_code=status,
        )
        if session is None and not existing:
            self.set_cookie(response, self.csrf_cookie, csrf, SESSION_SECONDS)
        self.remember_language(request, response)
        return response

    def remember_language(self, request: Request, response: Response) -> None:
        """Keep the language the switch chose (`?lang=`) for the visitor's next pages."""
        chosen = i18n.chosen_by_query(request)
        if chosen:
            response.set_cookie(
                i18n.COOKIE,
                chosen,
                max_age=i18n.COOKIE_SECONDS,
                path="/",
                secure=bool(self.settings.web_cookie_secure),
                httponly=True,
                samesite="lax",
            )

    def error_json(self, request: Request, exc: PageError, **headers: str) -> Response:
        """The submit call's error, in the visitor's language."""
        return JSONResponse(
            {"error": exc.text(i18n.language(request))}, status_code=exc.status, headers=headers
        )


def _content_link(template: str) -> Any:
    """Jinja helper: the operator's link for a content reference, or None without one."""

    def link(ref: str) -> str | None:
        return template.replace("{ref}", quote(ref, safe="")) if template and ref else None

    return link


# Characters that change how text around them is shown without being seen themselves:
# bidirectional embeddings, overrides and isolates, zero-width characters, the BOM.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def visible(text: object) -> str:
    """`text` with each invisible format character shown as <U+XXXX>, so an operator's
    content reference (or name, or a note) cannot pass for something else in the
    console ("gpj.exe" reversed into "exe.jpg") or reorder the text around it."""
    return _INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", str(text))
