"""The lean HTTP/1.1 POST client against raw servers on 127.0.0.1 that write exactly the bytes a test
scripts: framing (length, chunked, until close), keep-alive reuse, servers that close, and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mcp_gateway.upstream.http1 import Http1Error, Http1Pool
from tests.support.tls import self_signed

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0].encode(), headers, body


def _served(handler: Handler) -> Callable[[Callable[[Http1Pool, list[int]], Awaitable[None]]], None]:
    """Runs `scenario(pool, connections)` against a server calling `handler` per connection."""

    def run(scenario: Callable[[Http1Pool, list[int]], Awaitable[None]]) -> None:
        async def main() -> None:
            connections: list[int] = []

            async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                connections.append(1)
                try:
                    await handler(reader, writer)
                except (asyncio.IncompleteReadError, ConnectionError):
                    pass
                finally:
                    writer.close()

            server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            pool = Http1Pool(f"http://127.0.0.1:{port}/mcp?x=1", connect_timeout=2)
            try:
                await asyncio.wait_for(scenario(pool, connections), 10)
            finally:
                pool.close()
                server.close()

        asyncio.run(main())

    return run


def test_length_framed_answers_reuse_one_connection_and_the_request_is_exact() -> None:
    seen: list[tuple[bytes, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await _read_request(reader)
            seen.append(request)
            body = b'{"jsonrpc":"2.0","id":%d,"result":{}}' % len(seen)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        static = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        for index in range(3):
            extra = {"traceparent": f"00-{index:032x}-{1:016x}-01"} if index else None
            async with pool.post(static, b'{"a":%d}' % index, extra) as response:
                assert response.status == 200
                assert response.headers["mcp-session-id"] == "s1"
                assert await response.read() == b'{"jsonrpc":"2.0","id":%d,"result":{}}' % (index + 1)
        assert len(connections) == 1
        # An override of a static header replaces it rather than sending both.
        async with pool.post(static, b"{}", {"accept": "text/event-stream"}) as response:
            await response.read()

    _served(handler)(scenario)
    line, headers, body = seen[1]
    assert line == b"POST /mcp?x=1 HTTP/1.1"
    assert headers["host"].startswith("127.0.0.1:") and headers["traceparent"].startswith("00-")
    assert headers["content-type"] == "application/json" and body == b'{"a":1}'
    assert "traceparent" not in seen[0][1]
    assert seen[3][1]["accept"] == "text/event-stream"


def test_a_chunked_event_stream_arrives_chunk_by_chunk_before_it_ends() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        first = b"data: one\n\n"
        writer.write(b"%x\r\n%s\r\n" % (len(first), first))
        await writer.drain()
        await release.wait()
        second = b"data: two\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
        await writer.drain()
        await reader.read()  # keep the connection open: the response ended by its framing

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        async with pool.post({}, b"{}") as response:
            assert response.headers["content-type"] == "text/event-stream"
            chunks = response.iter_any()
            assert await anext(chunks) == b"data: one\n\n"  # before the server sent the rest
            release.set()
            assert [chunk async for chunk in chunks] == [b"data: two\n\n"]
        assert response.keep_alive

    _served(handler)(scenario)


def test_a_body_without_length_runs_until_the_server_closes_and_the_connection_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        for byte in b'{"result":1}':  # one byte per write
            writer.write(bytes([byte]))
            await writer.drain()
        writer.close()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        for _ in range(2):
            async with pool.post({}, b"{}") as response:
                assert await response.read() == b'{"result":1}'
        assert len(connections) == 2

    _served(handler)(scenario)


def test_a_pooled_connection_the_server_closed_is_not_used_again() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        # ... then the server's idle timeout closes the kept-alive connection.

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        async with pool.post({}, b"{}") as response:
            assert await response.read() == b"{}"
        await asyncio.sleep(0.1)  # the close reaches the client
        async with pool.post({}, b"{}") as response:
            assert await response.read() == b"{}"
        assert len(connections) == 2

    _served(handler)(scenario)


def test_a_server_dying_mid_response_is_an_error_and_the_connection_is_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()
        writer.transport.abort()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        with pytest.raises(Http1Error, match="connection lost mid-response") as caught:
            async with pool.post({}, b"{}") as response:
                await response.read()
        assert not caught.value.connect
        with pytest.raises(Http1Error):
            async with pool.post({}, b"{}") as response:
                await response.read()
        assert len(connections) == 2

    _served(handler)(scenario)


def test_a_malformed_status_line_is_an_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SPDY/9 banana\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        with pytest.raises(Http1Error, match="malformed HTTP response"):
            async with pool.post({}, b"{}"):
                pass

    _served(handler)(scenario)


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise AssertionError("nothing should connect")

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        with pytest.raises(ValueError, match="line break"):
            pool.post({}, b"{}", {"mcp-name": "x\r\nx-injected: 1"})
        assert connections == []

    _served(handler)(scenario)


def test_nothing_listening_is_a_connect_error() -> None:
    async def scenario() -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        pool = Http1Pool(f"http://127.0.0.1:{port}/mcp", connect_timeout=2)
        with pytest.raises(Http1Error, match="connection refused") as caught:
            async with pool.post({}, b"{}"):
                pass
        assert caught.value.connect

    asyncio.run(scenario())


def test_cancelling_a_request_closes_its_connection_instead_of_reusing_it() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, _, body = await _read_request(reader)
            if body == b"slow":
                await asyncio.sleep(5)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                async with pool.post({}, b"slow") as response:
                    await response.read()
        # The late answer of the abandoned request must never be read as the next request's answer.
        async with pool.post({}, b"fast") as response:
            assert await response.read() == b"ok"
        assert len(connections) == 2

    _served(handler)(scenario)


def test_https_verifies_the_server_against_the_trusted_certificates(tmp_path, monkeypatch) -> None:
    import ssl

    cert_file, key_file = self_signed(tmp_path, "upstream")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)

    async def scenario() -> None:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_tls)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
        try:
            # Not trusted: the handshake fails and nothing is sent.
            with pytest.raises(Http1Error, match="TLS handshake failed: CERTIFICATE_VERIFY_FAILED") as caught:
                async with Http1Pool(url, connect_timeout=2).post({}, b"{}"):
                    pass
            assert caught.value.connect
            # Trusted through the standard SSL_CERT_FILE: the answer arrives.
            monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
            async with Http1Pool(url, connect_timeout=2).post({}, b"{}") as response:
                assert await response.read() == b"{}"
        finally:
            server.close()

    asyncio.run(scenario())


def test_a_connection_in_use_when_the_pool_closes_is_closed_when_its_exchange_ends() -> None:
    closed_by_client = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        if await reader.read() == b"":
            closed_by_client.set()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        async with pool.post({}, b"{}") as response:
            pool.close()
            assert await response.read() == b"{}"
        await asyncio.wait_for(closed_by_client.wait(), 2)

    _served(handler)(scenario)


def test_a_gzip_body_is_decompressed_even_though_none_was_asked_for() -> None:
    import gzip

    answer = b'{"jsonrpc":"2.0","id":1,"result":{"text":"' + b"x" * 5000 + b'"}}'
    packed = gzip.compress(answer)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers, _ = await _read_request(reader)
        assert "accept-encoding" not in headers
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed))
        for start in range(0, len(packed), 7):  # in small pieces: the decompressor is fed as they come
            writer.write(packed[start : start + 7])
        await writer.drain()
        await reader.read()

    async def scenario(pool: Http1Pool, connections: list[int]) -> None:
        async with pool.post({}, b"{}") as response:
            assert await response.read() == answer

    _served(handler)(scenario)
