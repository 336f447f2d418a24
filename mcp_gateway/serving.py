"""Running the ASGI app under uvicorn: one process, or `--workers N` processes on one port.

Workers each open their own listening socket with `SO_REUSEPORT`, so the kernel spreads connections
over them evenly (uvicorn's own multi-worker mode shares one socket, and under load one worker took two
thirds of the connections). A small supervisor starts the workers, restarts one that dies, and on
SIGTERM lets every worker drain its calls in flight before it exits.

Connections are served by `edge.EdgeProtocol` (header size and count, header and idle timeouts, a
connection cap). Each worker raises its own open-file limit and has its own cap: descriptors are per
process, so `--workers N` accepts up to N times `server.max_connections`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from .config import GatewayConfig
from .edge import EdgeLimits, EdgeProtocol, EdgeState, connection_budget, open_fds, raise_nofile_limit

log = logging.getLogger("mcp_gateway")

_RESTART_BACKOFF_MAX = 10.0
_EARLY_EXIT_SECONDS = 5.0
_METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_FEW_CONNECTIONS = 64


def uvicorn_options(config: GatewayConfig, log_level: str) -> dict[str, Any]:
    return {
        "host": config.server.host,
        "port": config.server.port,
        "loop": "uvloop",
        "lifespan": "on",
        "http": EdgeProtocol,
        "timeout_keep_alive": config.server.keep_alive_timeout,
        "access_log": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": config.server.drain_timeout,
        "log_config": None,
        # Hot path: the gateway reads no client address and sends no Server header.
        "proxy_headers": False,
        "server_header": False,
    }


def edge_limits(config: GatewayConfig) -> EdgeLimits:
    server = config.server
    return EdgeLimits(
        max_head_bytes=server.max_header_bytes,
        max_url_bytes=server.max_url_bytes,
        max_headers=server.max_headers,
        header_timeout=server.header_timeout,
        max_connections=server.max_connections,
        fd_reserve=server.fd_reserve,
    )


class DrainingServer(uvicorn.Server):
    """SIGTERM drains: the app refuses new calls and ends its streams; calls in flight finish.

    Its state is an `EdgeState`, which `EdgeProtocol` reads its limits and the connection cap from.
    """

    def __init__(self, config: uvicorn.Config, app: Any, limits: EdgeLimits) -> None:
        super().__init__(config)
        self._gateway_app = app
        self._limits = limits
        # Before the lifespan opens upstreams and logs, so they get the raised limit too.
        self._nofile = raise_nofile_limit()
        budget = connection_budget(limits.max_connections, limits.fd_reserve, self._nofile, open_fds())
        self._edge = EdgeState(limits, budget.max_connections)
        self.server_state = self._edge

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # The lifespan has opened what the gateway holds for good (upstream pipes and connections, the
        # export process, logs): the cap is what the limit leaves after those and the reserve. Until now
        # the estimate made at construction applied (uvicorn awaits nothing after it starts listening).
        limits = self._limits
        budget = connection_budget(limits.max_connections, limits.fd_reserve, self._nofile, open_fds())
        self._edge.max_connections = budget.max_connections
        if budget.lowered_from is not None:
            log.warning(
                "server.max_connections %d does not fit under the open-file limit: serving %s; raise the limit "
                "(ulimit -n, systemd LimitNOFILE=) or lower server.fd_reserve",
                budget.lowered_from,
                budget.describe(),
            )
        elif limits.max_connections is None and budget.max_connections < _FEW_CONNECTIONS:
            log.warning("connections: only %s; raise the open-file limit or lower server.fd_reserve", budget.describe())
        else:
            log.info("connections: %s", budget.describe())

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.should_exit and sig == signal.SIGTERM:
            return  # already draining: a second SIGTERM (e.g. to the whole process group) must not force it
        log.info("received %s: draining calls in flight", signal.Signals(sig).name)
        self._gateway_app.begin_drain()
        super().handle_exit(sig, frame)
        # uvicorn re-raises captured signals on exit; a completed drain is a clean exit (status 0).
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def serve_one(app: Any, options: dict[str, Any], sockets: list[socket.socket] | None = None) -> None:
    DrainingServer(uvicorn.Config(app, **options), app, edge_limits(app.config)).run(sockets=sockets)


def serve_workers(count: int, options: dict[str, Any], drain_timeout: float) -> int:
    """Supervise `count` worker processes; returns the exit status."""
    with shared_metrics_dir():
        return _supervise(count, options, drain_timeout)


@contextlib.contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh directory where every worker writes its Prometheus values, so a scrape of any one reports the sum.

    prometheus_client picks file-backed values when `prometheus_client.values` is first imported, if the variable is
    set: workers are spawned (a fresh interpreter each, inheriting this environment), so it must be set before the
    first `start()`. Fresh per run, because a previous run's files would be summed in too.
    """
    path = tempfile.mkdtemp(prefix="mcp-gateway-metrics-")
    previous = os.environ.get(_METRICS_DIR_ENV)
    os.environ[_METRICS_DIR_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(_METRICS_DIR_ENV, None)
        else:
            os.environ[_METRICS_DIR_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def _forget_worker(pid: int | None) -> None:
    """A dead worker's counts stay in the sums (they are cumulative); only its live-gauge files go."""
    from prometheus_client.multiprocess import mark_process_dead

    if pid is not None:
        mark_process_dead(pid)


def _supervise(count: int, options: dict[str, Any], drain_timeout: float) -> int:
    context = multiprocessing.get_context("spawn")
    workers: dict[int, Any] = {}
    started: dict[int, float] = {}
    failures: dict[int, int] = {}
    stopping = False

    def start(slot: int) -> None:
        process = context.Process(target=_worker_main, args=(options,), name=f"mcp-gateway-worker-{slot}")
        process.start()
        workers[slot] = process
        started[slot] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, process.pid)

    def stop(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        log.info("received %s: workers drain their calls in flight", signal.Signals(sig).name)
        if sig == signal.SIGTERM:  # Ctrl-C already reached every process of the group
            for process in workers.values():
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(count):
        start(slot)
    while not stopping:
        time.sleep(0.2)
        for slot, process in list(workers.items()):
            if process.is_alive() or stopping:
                continue
            _forget_worker(process.pid)
            lived = time.monotonic() - started[slot]
            failures[slot] = failures.get(slot, 0) + 1 if lived < _EARLY_EXIT_SECONDS else 0
            if all(failures.get(s, 0) >= 3 for s in workers):
                log.error("every worker keeps exiting at start (exit code %s); giving up", process.exitcode)
                _terminate(workers.values())
                return 1
            delay = min(_RESTART_BACKOFF_MAX, 0.5 * 2 ** failures[slot])
            log.warning("worker %d exited with %s; restarting in %.1fs", slot, process.exitcode, delay)
            time.sleep(delay)
            if not stopping:
                start(slot)
    deadline = time.monotonic() + drain_timeout + 5
    for process in workers.values():
        process.join(max(0.0, deadline - time.monotonic()))
    _terminate(workers.values())
    return 0


def _terminate(processes: Any) -> None:
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)


def _worker_main(options: dict[str, Any]) -> None:
    from .app import create_app_from_env
    from .logs import setup_logging

    setup_logging(options["log_level"])
    sock = _reuseport_socket(options["host"], options["port"])
    app = create_app_from_env()
    with contextlib.suppress(KeyboardInterrupt):
        serve_one(app, options, [sock])
    sys.exit(0)


def _reuseport_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.setblocking(False)
    return sock
