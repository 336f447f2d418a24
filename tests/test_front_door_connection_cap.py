"""A connection cap below the open-file limit: a flood of idle connections is refused (503) while clients
already connected are served and the gateway still opens the upstream connections their calls need.

The gateway runs under RLIMIT_NOFILE 512 with `max_connections: 200` and `fd_reserve: 128`, so the test
needs a thousand sockets, not the tens of thousands that exhaust a default limit.
"""

from __future__ import annotations

import http.client
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.raw_http import connect, process_fds, process_rss_mb, status_of, tools_call

NOFILE = 512
CAP = 200
RESERVE = 128
FLOOD = 1000
CLIENTS = 16  # connected before the flood; during it each makes an upstream call that needs a connection of its own
LAUNCHER = (sys.executable, "-m", "tests.support.nofile", str(NOFILE))


def _classify(flood: list[socket.socket], within: float) -> tuple[int, int, int]:
    """(held, refused with 503, closed without an answer) after `within` seconds."""
    time.sleep(within)
    held = answered = dropped = 0
    for sock in flood:
        sock.setblocking(False)
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            held += 1
            continue
        except ConnectionResetError:
            data = b""
        if status_of(data) == 503:
            answered += 1
        else:
            dropped += 1
    return held, answered, dropped


def test_a_flood_past_the_cap_is_refused_while_clients_and_upstream_calls_are_served(gateway, upstreams):
    _, url = upstreams("--name", "box", "--tools", "1")
    gw = gateway(
        {
            "server": {"max_connections": CAP, "fd_reserve": RESERVE, "keep_alive_timeout": 60, "header_timeout": 60},
            "upstreams": {"box": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
        launcher=LAUNCHER,
    )
    pid = gw.proc.pid
    clients = [http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20) for _ in range(CLIENTS)]
    for connection in clients:  # connected, kept alive, and calls work
        assert tools_call(connection, "box__tool_0", {}, 1)["isError"] is False
    fds_before, rss_before = process_fds(pid), process_rss_mb(pid)

    started = time.monotonic()
    flood = [connect(gw.port) for _ in range(FLOOD)]
    opened_in = time.monotonic() - started
    try:
        held, answered, dropped = _classify(flood, within=1.0)
        fds_flooded = process_fds(pid)

        def slow_call(index: int) -> bool:  # concurrent: the upstream pool must open new connections
            result = tools_call(clients[index], "box__sleep", {"seconds": 0.5}, 100 + index)
            return result["isError"] is False

        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = list(pool.map(slow_call, range(CLIENTS)))
        fds_calls, rss_flooded = process_fds(pid), process_rss_mb(pid)
    finally:
        for sock in flood:
            sock.close()
    time.sleep(0.5)
    newcomer = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    newcomer_ok = tools_call(newcomer, "box__tool_0", {}, 2)["isError"] is False
    newcomer.close()
    notices = sum("connection cap reached" in line for line in gw.proc.output)

    report = (
        f"\n{FLOOD} idle connections opened in {opened_in:.2f}s: {held} held, {answered} refused with 503, "
        f"{dropped} closed; gateway fds {fds_before} -> {fds_flooded} flooded -> {fds_calls} with {CLIENTS} "
        f"upstream calls (RLIMIT_NOFILE {NOFILE}); RSS {rss_before:.1f} -> {rss_flooded:.1f} MB; "
        f"upstream calls {sum(outcomes)}/{CLIENTS} ok; cap notices logged: {notices}"
    )
    print(report)
    assert held + CLIENTS <= CAP, report
    assert held >= CAP - CLIENTS - 5, report  # the cap, not something lower, decides
    assert answered + dropped == FLOOD - held and answered >= 0.9 * (FLOOD - held), report
    assert fds_calls <= NOFILE - RESERVE + CLIENTS, report  # the reserve stayed free for the upstream side
    assert all(outcomes), report
    assert newcomer_ok, report
    assert notices == 1, report  # once, not once per refused connection
    for connection in clients:
        connection.close()


def test_each_worker_has_its_own_cap(gateway, upstreams):
    _, url = upstreams("--name", "box", "--tools", "1")
    cap = 40
    gw = gateway(
        {
            "server": {"max_connections": cap, "keep_alive_timeout": 60, "header_timeout": 60},
            "upstreams": {"box": {"transport": "streamable_http", "url": url}},
        },
        upstreams_ready=1,
        extra_args=("--workers", "2"),
    )
    for _ in range(2):  # each worker says so once it listens
        gw.proc.wait_for_line(f"connections: up to {cap} client connections", anywhere=True)
    flood = [connect(gw.port) for _ in range(300)]
    try:
        held, answered, dropped = _classify(flood, within=1.0)
    finally:
        for sock in flood:
            sock.close()
    print(f"\n--workers 2, max_connections {cap}: 300 idle connections, {held} held, {answered + dropped} refused")
    # SO_REUSEPORT spreads connections over both workers: each holds up to its cap, no more.
    assert cap < held <= 2 * cap
