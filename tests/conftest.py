"""Shared fixtures: real upstream servers and real gateway processes on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Gateway, Proc, scripted_server, start_redis


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def upstreams() -> Iterator[Callable[..., tuple[Proc, str]]]:
    """Start scripted upstream servers; all are killed at the end of the test."""
    started: list[Proc] = []

    def start(*args: str, transport: str = "http") -> tuple[Proc, str]:
        proc, url = scripted_server(*args, transport=transport)
        started.append(proc)
        return proc, url

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start `mcp-gateway serve` processes from a config dict; stopped at the end of the test."""
    started: list[Gateway] = []

    def start(config: dict[str, Any], *, upstreams_ready: int | None = None, **kwargs: Any) -> Gateway:
        gw = Gateway(config, tmp_path, **kwargs)
        started.append(gw)
        gw.wait_ready(upstreams_ready=upstreams_ready)
        return gw

    yield start
    for gw in started:
        gw.stop()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real Redis: the one on 127.0.0.1:6379 (or $MCP_GW_TEST_REDIS_PORT) if it answers, else a private
    `redis-server` on a free port."""
    shared_port = int(os.environ.get("MCP_GW_TEST_REDIS_PORT", "6379"))
    if _answers(shared_port):
        yield f"redis://127.0.0.1:{shared_port}/0"
        return
    proc, url = start_redis()  # nothing answers on the shared port
    try:
        yield url
    finally:
        proc.kill()


@pytest.fixture
def redis_state(redis_server: str) -> dict[str, str]:
    """A `state:` config section on the real Redis, with a key prefix of its own per test."""
    return {"backend": "redis", "redis_url": redis_server, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
