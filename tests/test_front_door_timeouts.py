"""Slow and idle connections are dropped: a header timeout (408) and an idle timeout, with clients served.

Low timeouts (2 s) keep the test short; the defaults are 10 s and 5 s.
"""

from __future__ import annotations

import contextlib
import http.client
import selectors
import socket
import threading
import time

from tests.support.processes import scripted_stdio_args
from tests.support.raw_http import connect, process_fds, process_rss_mb, status_of, tools_call

HEADER_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0
SLOWLORIS = 200  # partial heads, one more byte every TRICKLE seconds
CRLF_TRICKLERS = 20  # served once, then only blank lines (which never start a request)
IDLE = 50  # connect and send nothing
TRICKLE = 0.5


def _serve_normally(port: int, stop: threading.Event, latencies: list[float], errors: list[str]) -> None:
    """A well-behaved client on one kept-alive connection, calling a tool every 20 ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    request_id = 0
    while not stop.is_set():
        request_id += 1
        started = time.perf_counter()
        try:
            result = tools_call(connection, "box__tool_0", {"i": request_id}, request_id)
            assert result["isError"] is False
        except Exception as exc:
            errors.append(repr(exc))
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.02)
    connection.close()


def test_slowloris_and_idle_connections_are_closed_while_a_normal_client_is_served(gateway):
    gw = gateway(
        {
            "server": {"header_timeout": HEADER_TIMEOUT, "keep_alive_timeout": IDLE_TIMEOUT},
            "upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")},
        },
        upstreams_ready=1,
    )
    pid = gw.proc.pid
    fds_before, rss_before = process_fds(pid), process_rss_mb(pid)
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    client = threading.Thread(target=_serve_normally, args=(gw.port, stop, latencies, errors), daemon=True)
    client.start()

    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, tuple[str, float]] = {}  # socket -> (kind, when its timeout started)
    for _ in range(CRLF_TRICKLERS):
        sock = connect(gw.port)
        sock.sendall(f"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:{gw.port}\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b"\r\n\r\nok"):  # the whole response (/healthz answers "ok")
            answer += sock.recv(65536)
        assert status_of(answer) == 200
        sock.sendall(b"\r\n")
        opened[sock] = ("crlf", time.monotonic())
    for _ in range(SLOWLORIS):
        sock = connect(gw.port)
        sock.sendall(f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{gw.port}\r\nx-slow: ".encode())
        opened[sock] = ("slowloris", time.monotonic())
    for _ in range(IDLE):
        opened[connect(gw.port)] = ("idle", time.monotonic())
    for sock in opened:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    time.sleep(0.2)
    fds_held, rss_held = process_fds(pid), process_rss_mb(pid)

    closed: dict[str, list[tuple[float, int | None]]] = {"slowloris": [], "crlf": [], "idle": []}
    received: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + max(HEADER_TIMEOUT, IDLE_TIMEOUT) + 4
    next_trickle = time.monotonic() + TRICKLE
    while opened and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[sock] = received.get(sock, b"") + chunk
                continue
            kind, since = opened.pop(sock)
            closed[kind].append((time.monotonic() - since, status_of(received.get(sock, b""))))
            selector.unregister(sock)
            sock.close()
        if time.monotonic() >= next_trickle:
            next_trickle += TRICKLE
            for sock, (kind, _) in opened.items():
                if kind != "idle":
                    with contextlib.suppress(OSError):  # closed under us: seen on the next select
                        sock.send(b"a" if kind == "slowloris" else b"\r\n")
    stop.set()
    client.join(15)
    still_open = {kind for kind, _ in opened.values()}
    for sock in opened:
        sock.close()
    fds_after, rss_after = process_fds(pid), process_rss_mb(pid)

    slow_times = [t for t, _ in closed["slowloris"]]
    report = (
        f"\nslowloris {len(slow_times)}/{SLOWLORIS} closed after {min(slow_times, default=0):.2f}-"
        f"{max(slow_times, default=0):.2f}s; crlf {len(closed['crlf'])}/{CRLF_TRICKLERS}; idle "
        f"{len(closed['idle'])}/{IDLE} after {max((t for t, _ in closed['idle']), default=0):.2f}s; gateway fds "
        f"{fds_before} -> {fds_held} held -> {fds_after}, RSS {rss_before:.1f} -> {rss_held:.1f} -> {rss_after:.1f} MB; "
        f"normal client {len(latencies)} calls, {len(errors)} errors, slowest {max(latencies) * 1000:.1f} ms"
    )
    print(report)
    assert not still_open, f"still open after the timeouts: {still_open}{report}"
    # Slow heads: closed once header_timeout is up, with 408 (something was received: RFC 9110 §15.5.9).
    for kind in ("slowloris", "crlf"):
        assert all(HEADER_TIMEOUT - 0.3 <= t <= HEADER_TIMEOUT + 1.5 for t, _ in closed[kind]), report
        assert {status for _, status in closed[kind]} == {408}, report
    # Silent connections: closed after the idle timeout, with no response at all.
    assert all(IDLE_TIMEOUT - 0.3 <= t <= IDLE_TIMEOUT + 1.5 for t, _ in closed["idle"]), report
    assert {status for _, status in closed["idle"]} == {None}, report
    assert not errors and len(latencies) > 50 and max(latencies) < 1.0, report
    assert fds_after <= fds_before + 5, report
