"""`mcp-gateway stdio` driven line by line, for messages no SDK client would send (hostile ids, bad JSON)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.processes import ROOT


class RawStdio:
    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "mcp_gateway", "stdio", "--config", str(config)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**__import__("os").environ, **(env or {})},
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if line.strip():
                self.lines.put(json.loads(line))

    def _read_errors(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def send(self, message: Any) -> None:
        raw = message if isinstance(message, bytes) else json.dumps(message).encode()
        assert self.popen.stdin is not None
        self.popen.stdin.write(raw + b"\n")
        self.popen.stdin.flush()

    def receive(self, timeout: float = 20.0, where: Any = None) -> dict[str, Any]:
        """The next message (that `where` accepts, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no answer from mcp-gateway stdio; stderr:\n{''.join(self.stderr)[-3000:]}")
            try:
                message = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if where is None or where(message):
                return message

    def ask(self, message: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        self.send(message)
        return self.receive(timeout, lambda m: "id" in m and m.get("id") == message.get("id"))

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def close(self) -> int:
        if self.popen.stdin is not None:
            self.popen.stdin.close()
        try:
            return self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)
