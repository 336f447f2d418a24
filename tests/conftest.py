"""Shared fixtures: real upstream servers and real gateway processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Gateway, Proc, scripted_server


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
