"""Test harness: run the real `hashguard` CLI and server as subprocesses on loopback."""

from __future__ import annotations

import http.cookiejar
import io
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc
from PIL import Image

_LISTENING = re.compile(r"listening on (\S+):(\d+) \(gRPC\) and http://\S+:(\d+)/metrics")


def run_cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `hashguard ARGS` in a fresh interpreter, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"hashguard {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
    return result


def details(error: grpc.RpcError) -> str:
    """A failed call's status message ("" when it carried none)."""
    return error.details() or ""


def trailers(error: grpc.RpcError) -> dict[str, str]:
    """A failed call's trailing metadata, as text."""
    metadata: Any = error.trailing_metadata()  # (key, value) pairs
    return {str(key): str(value) for key, value in metadata or ()}


def add_key(data_dir: Path, role: str, name: str, *options: str) -> str:
    """`hashguard keys add` (with `options` such as `--tenant T`) prints the key alone on
    the last line of stdout."""
    out = run_cli(
        "keys", "add", "--data-dir", str(data_dir), "--role", role, "--name", name, *options
    )
    return out.stdout.strip().splitlines()[-1]


@dataclass
class ServerProcess:
    """A `hashguard serve` subprocess on free loopback ports."""

    data_dir: Path
    extra_args: Sequence[str] = ()
    # RLIMIT_AS in bytes for the server (0: none): allocations beyond it fail there.
    address_space_limit: int = 0
    process: subprocess.Popen | None = None
    port: int = 0
    metrics_port: int = 0
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60) -> ServerProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                "0",
                "--metrics-port",
                "0",
                # One process, as before `--processes` (its default is one per core);
                # tests of several pass their own, which comes later and wins.
                *("--processes", "1"),
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=self._limit_address_space if self.address_space_limit else None,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("server exited early:\n" + "".join(self.output))
            self.output.append(line)
            found = _LISTENING.search(line)
            if found:
                self.port, self.metrics_port = int(found.group(2)), int(found.group(3))
                return self
        raise AssertionError("server did not start in time:\n" + "".join(self.output))

    def _limit_address_space(self) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (self.address_space_limit,) * 2)

    def memory(self) -> dict[str, int]:
        """The server's VmSize, VmHWM (peak RSS) and VmRSS from /proc, in bytes."""
        assert self.process is not None
        found = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmSize", "VmHWM", "VmRSS", "VmPeak"):
                    found[name] = int(value.split()[0]) * 1024
        return found

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(
            self.target, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
        )

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit code and keeps the remaining output."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=timeout)
        self.output.append(out or "")
        return self.process.returncode

    def log(self) -> str:
        return "".join(self.output)


class Stubs:
    """The three service stubs on one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.match = pb_grpc.MatchServiceStub(channel)
        self.submission = pb_grpc.SubmissionServiceStub(channel)
        self.review = pb_grpc.ReviewServiceStub(channel)


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def encode(image: Image.Image | np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    """Encode pixels to file bytes, as an uploader's browser or app would."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


_WEB_LISTENING = re.compile(r"web pages on (http://\S+:\d+)/")


@dataclass
class WebTier:
    """A `hashguard web` subprocess on a free loopback port, in front of `target`, and a
    cookie-keeping HTTP client for it (a visitor's or a moderator's browser, minus the
    JavaScript). `env` adds HASHGUARD_WEB_* settings; `args` adds flags."""

    target: str
    env: dict[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    process: subprocess.Popen[str] | None = None
    url: str = ""

    def start(self) -> WebTier:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "service.cli", "web", "--web-port", "0"),
                *("--web-target", self.target, *self.args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "HASHGUARD_WEB_SESSION_SECRET": "s" * 40,
                # Python's cookie jar sends Secure cookies over https only
                "HASHGUARD_WEB_COOKIE_SECURE": "0",
                **self.env,
            },
        )
        assert self.process.stdout is not None
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            found = _WEB_LISTENING.search(line)
            if found:
                self.url = found.group(1)
                return self
        self.stop()
        raise AssertionError("hashguard web did not start:\n" + "".join(seen))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.communicate(timeout=30)

    def browser(self) -> Browser:
        return Browser(self.url)


class Browser:
    """HTTP with a cookie jar, no redirects followed, the CSRF token read from pages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def request(
        self,
        path: str,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, dict[str, str]]:
        """(status, body text, headers named in lower case) of one request: a form POST,
        a raw POST, or a GET."""
        data = urllib.parse.urlencode(form).encode() if form is not None else body
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with self._opener.open(request, timeout=60) as response:
                return response.status, response.read().decode(), _lower(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), _lower(exc.headers)

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on `path` (GET; sets the visitor's cookie)."""
        _, page, _ = self.request(path)
        found = re.search(r'(?:name="csrf" value|data-csrf)="([^"]+)"', page)
        assert found, page
        return found.group(1)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def sign_in(self, key: str) -> None:
        status, page, _ = self.request(
            "/console/sign-in", {"key": key, "csrf": self.csrf("/console/sign-in")}
        )
        assert status == 303, (status, page)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
