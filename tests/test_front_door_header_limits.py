"""Request heads are bounded before they are buffered: size (431), URL (414), field count (431), trailers.

Defaults only (60 KiB head, 8 KiB URL, 100 fields): these are the limits a gateway ships with.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Sequence

import httpx
import pytest

from tests.support.processes import scripted_stdio_args
from tests.support.raw_http import connect, process_rss_mb, read_until_closed, status_of

MAX_HEAD = 61440
MAX_URL = 8192
MAX_FIELDS = 100


@pytest.fixture
def gw(gateway):
    return gateway({"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "1")}}, upstreams_ready=1)


def head(port: int, target: str = "/healthz", fields: Sequence[tuple[str, str]] = (), size: int | None = None) -> bytes:
    """A GET head; with `size`, an `x-fill` field is sized so the whole head is exactly `size` bytes."""
    lines = [f"GET {target} HTTP/1.1", f"host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in fields)]
    if size is not None:
        bare = len("\r\n".join([*lines, "x-fill: "]).encode()) + 4
        lines.append("x-fill: " + "a" * (size - bare))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    assert size is None or len(data) == size
    return data


def exchange(port: int, data: bytes) -> bytes:
    """Send a request on a fresh connection; the response head that comes back."""
    with connect(port) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_head_at_the_limit_is_served_one_byte_more_gets_431_and_the_connection_closes(gw):
    assert status_of(exchange(gw.port, head(gw.port, size=MAX_HEAD))) == 200
    with connect(gw.port) as sock:
        sock.sendall(head(gw.port, size=MAX_HEAD + 1))
        answer = read_until_closed(sock, timeout=10)  # returns only once the gateway has closed
    assert status_of(answer) == 431 and b"connection: close" in answer
    assert b"exceeds 61440 bytes" in answer


def test_a_long_url_gets_414(gw):
    prefix = "/healthz?q="
    assert status_of(exchange(gw.port, head(gw.port, prefix + "a" * (MAX_URL - len(prefix))))) == 200
    with connect(gw.port) as sock:
        sock.sendall(head(gw.port, prefix + "a" * (MAX_URL - len(prefix) + 1)))
        answer = read_until_closed(sock, timeout=10)
    assert status_of(answer) == 414 and b"URI Too Long" in answer


def test_more_than_100_header_fields_get_431(gw):
    fields = [(f"x-f{i}", "1") for i in range(MAX_FIELDS - 1)]  # and host: 100 in all
    assert status_of(exchange(gw.port, head(gw.port, fields=fields))) == 200
    with connect(gw.port) as sock:
        sock.sendall(head(gw.port, fields=[*fields, ("x-one-more", "1")]))
        answer = read_until_closed(sock, timeout=10)
    assert status_of(answer) == 431 and b"more than 100 fields" in answer


def test_a_200mb_style_header_value_is_refused_early_without_memory_or_stalls(gw):
    """The attack of the issue, bounded: up to 32 MiB of one header value, streamed as fast as we can.

    The gateway must answer 431 long before the value ends, not grow, and keep answering others."""
    pid = gw.proc.pid
    rss_before = process_rss_mb(pid)
    stalls: list[float] = []
    rss = [rss_before]
    stop = threading.Event()

    def probe() -> None:  # another client, served throughout; and the gateway's memory meanwhile
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                assert client.get(f"http://127.0.0.1:{gw.port}/healthz").status_code == 200
                stalls.append(time.perf_counter() - started)
                rss.append(process_rss_mb(pid))
                time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    sent, answer, started = 0, b"", time.monotonic()
    answered_after = None
    chunk = b"a" * 262144
    with connect(gw.port) as sock:
        sock.sendall(f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{gw.port}\r\nx-big: ".encode())
        while sent < 32 * 1024 * 1024 and time.monotonic() - started < 20:
            if select.select([sock], [], [], 0)[0]:
                answered_after = time.monotonic() - started  # the gateway answered (or closed)
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the gateway gave up reading after answering: fine, read the answer
                break
            sent += len(chunk)
        with contextlib.suppress(TimeoutError):
            answer = read_until_closed(sock, timeout=10)
    time.sleep(0.3)
    stop.set()
    prober.join(15)
    answered = "never" if answered_after is None else f"{answered_after:.3f}s"
    print(
        f"\nanswer {status_of(answer)} after {answered}, {sent / 2**20:.1f} MiB sent by then; RSS "
        f"{rss_before:.1f} MB, peak {max(rss):.1f} MB; slowest /healthz meanwhile {max(stalls) * 1000:.1f} ms "
        f"({len(stalls)} probes)"
    )
    assert status_of(answer) == 431, answer[:200]
    assert max(rss) - rss_before < 8, "the header value was buffered"
    assert stalls and max(stalls) < 0.5, "the event loop stalled"


def test_pipelined_heads_are_held_to_the_same_limit(gw):
    """A head that begins in the same read as the end of the request before it is counted too; the
    request before it is answered in full first (never an interleaved error, RFC 9112 §9.3.2)."""
    small = head(gw.port)
    with connect(gw.port) as sock:
        sock.sendall(small + small.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))
        assert read_until_closed(sock, timeout=10).count(b"HTTP/1.1 200 OK") == 2
    with connect(gw.port) as sock:
        sock.sendall(small + head(gw.port, size=2 * MAX_HEAD))
        answer = read_until_closed(sock, timeout=10)
    # The first request's answer comes whole and first. Whether the refusal follows it depends on how the
    # kernel split the bytes: refused while the 200 is still due, the connection just closes after it;
    # refused once it went out, a 431 follows it. Never a 431 before or inside the 200.
    first, _, rest = answer.partition(b"\r\n\r\nok")
    assert status_of(answer) == 200 and first.count(b"HTTP/1.1 ") == 1, answer[-300:]
    assert rest == b"" or (rest.count(b"HTTP/1.1 ") == 1 and status_of(rest) == 431), answer[-300:]


def test_chunked_trailers_count_like_headers(gw):
    """Trailer fields (RFC 9112 §7.1.2) go through the same parser buffers: the same budget applies."""
    request = (
        f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{gw.port}\r\ncontent-type: application/json\r\n"
        "accept: application/json, text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        "2\r\n{}\r\n0\r\nx-trailer: "
    ).encode()
    with connect(gw.port) as sock:
        sock.sendall(request + b"a" * (2 * MAX_HEAD))
        answer = read_until_closed(sock, timeout=10)
    assert status_of(answer) == 431, answer[:200]
    # After all of that the gateway serves as before.
    assert httpx.get(f"http://127.0.0.1:{gw.port}/healthz").status_code == 200
