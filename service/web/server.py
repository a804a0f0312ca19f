"""Serve the web pages with uvicorn on one socket we bind first, so port 0 can report the
port it got (tests and the log line read it)."""

from __future__ import annotations

import logging
import socket

import uvicorn

from service.config import WebSettings
from service.web.app import create_app, service_tls

log = logging.getLogger("hashguard.web")


def serve(settings: WebSettings) -> int:
    if not settings.web_submitter_key:
        log.warning(
            "no HASHGUARD_WEB_SUBMITTER_KEY: the victim page will say it cannot take new cases"
        )
    if not settings.web_session_secret:
        log.warning(
            "no HASHGUARD_WEB_SESSION_SECRET: moderators are signed out when this process "
            "restarts, and other web replicas cannot read their sessions"
        )
    sock = socket.socket(socket.AF_INET6 if ":" in settings.web_host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.web_host, settings.web_port))
    # Listen before saying so: a client that reads the log line can connect at once, and
    # waits in the backlog until uvicorn accepts.
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    # Built before the log line, so an unreadable web_tls_* file stops the start.
    app = create_app(settings)
    log.info(
        "web pages on http://%s:%d/ (console: /console), service at %s%s",
        host,
        port,
        settings.web_target,
        " over TLS" if service_tls(settings).enabled else "",
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
