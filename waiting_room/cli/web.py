"""`waiting-room web`: one uvicorn process, or N of them sharing one port.

N workers each bind the port with SO_REUSEPORT, so the kernel spreads new
connections over them by address hash. uvicorn's own multi-worker mode shares
one listening socket instead, and asyncio accepts a whole burst of waiting
connections in the worker that wakes first: one worker would take most of
them. Each worker runs the full app (its own Redis clients, bus subscription
and hub); the state all of them agree on lives in Redis, so a socket may land
on any worker and a client whose worker died reconnects to another one and
resumes its place. The parent only starts, replaces and stops workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import signal
import socket
import threading
import time
from typing import Any

import uvicorn

from waiting_room.settings import Settings
from waiting_room.web.head_deadline import head_deadline_protocol

log = logging.getLogger(__name__)

WORKER_HEADER = "x-wr-worker"  # which worker answered: lets an operator (and the tests) see the spread
GRACE_SECONDS = 3.0  # uvicorn's graceful shutdown; the parent waits a little longer before killing
RESTART_BACKOFF = 1.0  # a worker that dies right after starting is not restarted in a tight loop
PR_SET_PDEATHSIG = 1


def uvicorn_config(app: Any, host: str, port: int, **extra: Any) -> uvicorn.Config:
    """The server options every web process runs with (the benchmarks reuse them for their baselines)."""
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        loop="uvloop",  # asyncio's loop and the pure-Python h11 parser cost more CPU per join than the app
        http=head_deadline_protocol("httptools"),  # a request head must arrive in time (slowloris)
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=1024,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=int(GRACE_SECONDS),
        access_log=False,
        proxy_headers=False,  # the app's front reads X-Forwarded-For itself, from WR_TRUSTED_PROXIES only
    )
    return uvicorn.Config(app, **{**options, **extra})


def serve(settings: Settings, host: str, port: int, workers: int) -> int:
    from waiting_room.web.app import create_app

    app = create_app(settings)  # refuses bad settings here, once, and creates the demo key before any fork
    return serve_app(app, host, port, workers)


def freeze_startup_objects() -> None:
    """Keep the cyclic collector off what startup built (modules, routes, templates: ~50,000 objects
    it can never free). A full collection walked them all, ~30 ms during which every request waited,
    about once a second at a sale's opening: joins' p99 was 45-52 ms with it, 10-12 ms without
    (docs/benchmarks.md). Frozen before the workers fork, the pages holding them also stay shared."""
    gc.collect()
    gc.freeze()


def serve_app(app: Any, host: str, port: int, workers: int) -> int:
    """Any ASGI app on our server options, in 1 or N processes (the benchmarks run their baselines so)."""
    freeze_startup_objects()
    if workers == 1:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the signal it shut down on
            uvicorn.Server(uvicorn_config(app, host, port)).run()
        return 0
    _reuse_port_socket(host, port).close()  # a port held by another program: an error now, in words
    return Supervisor(app, host, port, workers).run()


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """A worker whose supervisor was killed outright stops too, rather than serving on unsupervised."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker(app: Any, host: str, port: int, index: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the supervisor's handlers were inherited; uvicorn sets its own
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _die_with_parent()
    sock = _reuse_port_socket(host, port)
    config = uvicorn_config(app, host, port, headers=[(WORKER_HEADER, str(index))])
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts N workers, replaces any that dies, and on SIGTERM or SIGINT stops them all."""

    def __init__(self, app: Any, host: str, port: int, workers: int) -> None:
        self.args = (app, host, port)
        self.workers = workers
        # fork: the app is built and checked once; nothing runs in the parent yet (no loop, no threads)
        self.context = multiprocessing.get_context("fork")
        self.procs: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = {}
        self.stopping = threading.Event()

    def _start(self, index: int) -> None:
        proc = self.context.Process(target=_worker, args=(*self.args, index), name=f"web-{index}", daemon=False)
        proc.start()
        self.procs[index] = (proc, time.monotonic())

    def _on_signal(self, *_: object) -> None:
        self.stopping.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for index in range(1, self.workers + 1):
            self._start(index)
        log.info("web: %d workers on one port", self.workers)
        while not self.stopping.wait(0.2):
            for index, (proc, started) in list(self.procs.items()):
                if proc.is_alive():
                    continue
                proc.join()
                if time.monotonic() - started < RESTART_BACKOFF:
                    time.sleep(RESTART_BACKOFF)
                log.warning("web worker %d (pid %s) exited with %s: starting another", index, proc.pid, proc.exitcode)
                if not self.stopping.is_set():
                    self._start(index)
        self._stop_all()
        return 0

    def _stop_all(self) -> None:
        procs = [proc for proc, _ in self.procs.values()]
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        deadline = time.monotonic() + GRACE_SECONDS + 5
        for proc in procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
