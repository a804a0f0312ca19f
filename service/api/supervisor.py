"""`hashguard serve --processes N`: N serving processes on one port, one list in memory.

One Python process uses about one core (the GIL), so the supervisor loads the list
once, then forks N processes that each run the usual server (service/api/server.py)
with SO_REUSEPORT on the same port; the kernel spreads new connections over them. The
index arrays and the entries' states were built before the fork, so the processes
share those pages (copy-on-write: a page is copied only when one process writes it,
and the list's big arrays are only read; `gc.freeze()` keeps the collector off the
shared objects). Each process opens its own store connections and follows the store's
change log (service/replica/follower.py), so a change made through one reaches the
others within --follow-interval; what it adds lives in its own small append buffer.
Only process 0 writes index snapshots.

The supervisor stays single-threaded (so forking it again is safe): it serves the
summed /metrics (service/api/metrics_sum.py) on --metrics-port from its own loop,
starts a process again when one dies (its replacement catches up from the change log
before it serves), forwards SIGTERM and SIGINT so every process shuts down
gracefully, and gives up with exit 1 when processes keep dying (a crash loop).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import math
import os
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from http.server import HTTPServer
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, MetricsHandler

from service.api.metrics_sum import SummedMetrics
from service.api.server import listening_line, serve
from service.config import Settings
from service.replica.snapshot import snapshot_dir
from service.replica.startup import LoadedList
from service.runtime import Runtime
from service.store import open_store

log = logging.getLogger("hashguard.supervisor")

CRASH_WINDOW_SECONDS = 60.0
CRASHES_ALLOWED = 5  # deaths within the window; one more and the supervisor gives up
_TICK = 0.2
_PR_SET_PDEATHSIG = 1


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU
    limit (a container's `cpus`, a pod's limits.cpu), rounded up."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


@dataclass
class _Process:
    slot: int  # 0..N-1; slot 0 writes the index snapshots
    pid: int
    started: float
    metrics_port: int = 0


class Supervisor:
    def __init__(self, settings: Settings, loaded: LoadedList, count: int) -> None:
        self.settings = settings
        self.loaded = loaded
        self.count = count
        self.metrics = SummedMetrics()
        self._processes: dict[int, _Process] = {}  # by pid
        self._deaths: deque[float] = deque()
        self._stop = False
        self._ready_r, self._ready_w = os.pipe()
        self._buffer = b""
        self._inherited: tuple[int, ...] = ()

    # -- the supervisor's loop --------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (returns 0 when every process stopped cleanly)
        or until processes crash-loop (returns 1)."""
        reservation = _reserve_port(self.settings.host, self.settings.port)
        try:
            httpd = _metrics_server(self.settings, self.metrics)
        except OSError:
            reservation.close()
            raise
        self.settings = replace(self.settings, port=reservation.getsockname()[1], reuse_port=1)
        # What a serving process closes after the fork: the supervisor's own sockets.
        self._inherited = (reservation.fileno(), httpd.fileno(), self._ready_r)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._supervise(httpd)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            httpd.server_close()
            reservation.close()
            os.close(self._ready_r)
            os.close(self._ready_w)

    def _supervise(self, httpd: HTTPServer) -> int:
        gc.freeze()  # the loaded list's objects: never touched by a collection again
        for slot in range(self.count):
            self._start(slot)
        if not self._wait_until_ready():
            self._stop_all()
            return 1
        note = f" ({self.count} serving processes, pids {' '.join(map(str, self._pids()))})"
        print(
            listening_line(self.settings, self.settings.port, httpd.server_port, note), flush=True
        )
        crashed = False
        while not self._stop:
            readable, _, _ = select.select([httpd.fileno(), self._ready_r], [], [], _TICK)
            if httpd.fileno() in readable:
                httpd.handle_request()
            if self._ready_r in readable:
                self._read_ready()
            if not self._reap_and_replace():
                crashed = True
                break
        clean = self._stop_all()
        print("hashguard stopped", flush=True)
        return 1 if crashed or not clean else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def _pids(self) -> list[int]:
        return sorted(self._processes)

    # -- starting, readiness ---------------------------------------------------------

    def _start(self, slot: int) -> None:
        if threading.active_count() > 1:
            log.warning("forking with %d threads running", threading.active_count())
        pid = os.fork()
        if pid == 0:  # the serving process: never returns
            code = 2
            try:
                for fd in self._inherited:
                    os.close(fd)
                code = _serve_one(self.settings, self.loaded, slot, self._ready_w)
            except BaseException as exc:  # reported, then the process ends
                if not isinstance(exc, KeyboardInterrupt | SystemExit):
                    print(f"serving process {slot}: {exc}", file=sys.stderr, flush=True)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self._processes[pid] = _Process(slot, pid, time.monotonic())

    def _wait_until_ready(self) -> bool:
        """Until every first process serves; False when one died first or at SIGTERM."""
        while any(p.metrics_port == 0 for p in self._processes.values()):
            if self._stop:
                return False
            readable, _, _ = select.select([self._ready_r], [], [], _TICK)
            if readable:
                self._read_ready()
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                gone = self._processes.pop(pid, None)
                slot = "?" if gone is None else gone.slot
                print(
                    f"serving process {slot} exited before it served ({_how(status)})",
                    file=sys.stderr,
                    flush=True,
                )
                return False
        return True

    def _read_ready(self) -> None:
        """Lines "pid metrics_port" written by processes once they serve."""
        self._buffer += os.read(self._ready_r, 4096)
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            pid, metrics_port = (int(x) for x in line.split())
            process = self._processes.get(pid)
            if process is not None:
                process.metrics_port = metrics_port
                self.metrics.ports[pid] = metrics_port

    # -- deaths ----------------------------------------------------------------------

    def _reap_and_replace(self) -> bool:
        """Start a process again in the slot of each that died; False on a crash loop."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return True
            gone = self._processes.pop(pid, None)
            self.metrics.ports.pop(pid, None)
            if gone is None or self._stop:
                continue
            now = time.monotonic()
            self._deaths.append(now)
            while self._deaths and self._deaths[0] < now - CRASH_WINDOW_SECONDS:
                self._deaths.popleft()
            if len(self._deaths) > CRASHES_ALLOWED:
                log.error(
                    "serving processes died %d times within %.0fs (the last: process %d, %s); "
                    "giving up",
                    len(self._deaths),
                    CRASH_WINDOW_SECONDS,
                    gone.slot,
                    _how(status),
                )
                return False
            log.warning(
                "serving process %d (pid %d) died (%s); starting another",
                gone.slot,
                pid,
                _how(status),
            )
            self.metrics.restarts += 1
            self._start(gone.slot)

    def _stop_all(self) -> bool:
        """SIGTERM every process, wait out its grace period, then SIGKILL; True when all
        of them exited 0."""
        for pid in self._processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace_seconds + 15
        clean = True
        while self._processes:
            if time.monotonic() > deadline:
                for pid in self._processes:
                    log.error("serving process pid %d did not stop: killing it", pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = math.inf
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
                continue
            if self._processes.pop(pid, None) is not None and status != 0:
                clean = False
                log.error("serving process pid %d stopped with %s", pid, _how(status))
        return clean


def _serve_one(settings: Settings, loaded: LoadedList, slot: int, ready_fd: int) -> int:
    """One serving process (after the fork): its own store connections, follower, pool,
    key cache and metrics, over the list it shares with the others."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):  # Linux only: end with the supervisor
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        return 1  # the supervisor died before prctl took effect
    if slot != 0:
        settings = replace(settings, snapshot_interval=0.0)
    snapshots = snapshot_dir(settings.data_path) if slot == 0 else None
    store = open_store(settings.store, settings.data_path, settings.pool_size)
    try:
        runtime = Runtime(store, settings, snapshots, loaded=loaded)
    except BaseException:
        store.close()
        raise

    def ready(port: int, metrics_port: int) -> None:
        os.write(ready_fd, f"{os.getpid()} {metrics_port}\n".encode())

    return serve(settings, runtime, ready)


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) the gRPC port with SO_REUSEPORT: picks the port when 0 is
    asked for, fails early when another program holds it, and keeps it ours while
    processes come and go. A socket that does not listen takes no connections."""
    bare = host.strip("[]")
    family, kind, proto, _, address = socket.getaddrinfo(
        bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen for gRPC on {host}:{port}: the port is in use or not allowed "
            f"({exc.strerror})"
        ) from None
    return sock


class _QuietHandler(MetricsHandler):
    timeout = 5  # a client that connects and sends nothing must not stall the loop

    def log_message(self, format: str, *args: object) -> None:
        pass


def _metrics_server(settings: Settings, metrics: SummedMetrics) -> HTTPServer:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    handler = type("SummedMetricsHandler", (_QuietHandler,), {"registry": registry})
    bare = settings.host.strip("[]")
    server_class = type(
        "MetricsHTTPServer",
        (HTTPServer,),
        {"address_family": socket.AF_INET6 if ":" in bare else socket.AF_INET, "timeout": 0},
    )
    try:
        server: HTTPServer = server_class((bare, settings.metrics_port), handler)
        return server
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc.strerror}"
        ) from None


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
