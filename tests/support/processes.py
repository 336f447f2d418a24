"""Start real processes for tests (upstream servers, the gateway) and stop them cleanly."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process whose output lines are collected in the background."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.argv = argv
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_line(self, prefix: str, timeout: float = 30.0, *, anywhere: bool = False) -> str:
        """The first output line starting with `prefix` (or containing it, with `anywhere`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.popen.poll() is not None:
                    break
                continue
            if line.startswith(prefix) or (anywhere and prefix in line):
                return line.strip()
        raise RuntimeError(f"{self.argv} did not print {prefix!r}; output:\n{''.join(self.output)[-4000:]}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode


def start_redis() -> tuple[Proc, str]:
    """A private `redis-server` on a free port (the caller kills it); its URL."""
    import shutil

    import pytest

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (tests/run.sh installs it)")
    port = free_port()
    proc = Proc([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"])
    try:
        proc.wait_for_line("Ready to accept connections", timeout=20, anywhere=True)
    except RuntimeError:
        proc.kill()
        raise
    return proc, f"redis://127.0.0.1:{port}/0"


def scripted_server(*args: str, transport: str = "http") -> tuple[Proc, str]:
    """Start tests/support/scripted_server.py; returns the process and its URL."""
    port = free_port()
    proc = Proc(
        [sys.executable, str(SUPPORT / "scripted_server.py"), "--transport", transport, "--port", str(port), *args]
    )
    line = proc.wait_for_line("READY")
    return proc, line.split()[1]


def scripted_stdio_args(*args: str) -> dict[str, Any]:
    """A stdio upstream config entry running the scripted server."""
    return {
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(SUPPORT / "scripted_server.py"), "--transport", "stdio", *args],
    }


class Gateway:
    """A real `mcp-gateway serve` process on a free port."""

    def __init__(
        self,
        config: dict[str, Any],
        tmp_path: Path,
        *,
        extra_args: tuple[str, ...] = (),
        launcher: tuple[str, ...] = (),
    ) -> None:
        """`launcher`: argv run in front of the gateway's (e.g. tests.support.nofile, which execs it)."""
        self.port = free_port()
        config = {**config, "server": {**config.get("server", {}), "port": self.port}}
        config.setdefault("auth", {"allow_anonymous": True})  # tests that are not about auth
        self.config = config
        self.config_path = tmp_path / f"gateway-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        argv = [sys.executable, "-m", "mcp_gateway", "serve", "--config", str(self.config_path), *extra_args]
        self.proc = Proc([*launcher, *argv])

    def wait_ready(self, *, upstreams_ready: int | None = None, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                break
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/readyz", headers=self._admin, timeout=2)
                last = response.json()
                ready = sum(1 for u in last["upstreams"].values() if u["state"] == "ready")
                if upstreams_ready is None or ready >= upstreams_ready:
                    return last
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready: {last}\n{''.join(self.proc.output)[-4000:]}")

    def readyz(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/readyz", headers=self._admin, timeout=5).json()

    @property
    def _admin(self) -> dict[str, str]:
        """The operator's credential for /readyz's details, when the config sets one."""
        token = (self.config.get("server") or {}).get("admin_token")
        return {"authorization": f"Bearer {token}"} if token else {}

    def stop(self) -> int:
        return self.proc.stop()


@contextlib.contextmanager
def running_gateway(config: dict[str, Any], tmp_path: Path, **kwargs: Any) -> Iterator[Gateway]:
    gateway = Gateway(config, tmp_path)
    try:
        gateway.wait_ready(**kwargs)
        yield gateway
    finally:
        gateway.stop()


def read_records(path: Path) -> list[dict[str, Any]]:
    import json

    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def llm_server() -> tuple[Proc, str]:
    """Start tests/support/llm_server.py (recorded provider traffic); returns the process and its root URL."""
    port = free_port()
    proc = Proc([sys.executable, "-m", "tests.support.llm_server", "--port", str(port)])
    proc.wait_for_line("ready")
    return proc, f"http://127.0.0.1:{port}"
