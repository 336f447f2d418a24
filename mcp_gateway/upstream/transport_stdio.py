"""stdio upstream: a subprocess speaking newline-delimited JSON-RPC on stdin/stdout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import orjson

from .limits import DEFAULT_MAX_MESSAGE_BYTES, SAMPLE_BYTES
from .transport import StreamTransport, UpstreamGone

log = logging.getLogger("mcp_gateway.upstream")


class StdioTransport(StreamTransport):
    def __init__(
        self,
        name: str,
        command: str,
        args: list[str],
        env: dict[str, str],
        cwd: str | None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(name, max_message_bytes)
        self._argv = [command, *args]
        self._env = {**os.environ, **env}
        self._cwd = cwd
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._write_lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
                cwd=self._cwd,
                limit=self._max_message,  # one line is one message (MCP stdio transport)
                start_new_session=True,  # a Ctrl-C to the gateway must not kill upstreams before draining
            )
        except OSError as exc:
            raise UpstreamGone(self.name, f"cannot start {self._argv[0]!r}: {exc.strerror or exc}") from None
        self._tasks = [
            asyncio.create_task(self._read_stdout(), name=f"stdio-out:{self.name}"),
            asyncio.create_task(self._read_stderr(), name=f"stdio-err:{self.name}"),
        ]

    async def _read_stdout(self) -> None:
        assert self._process and self._process.stdout
        reader = self._process.stdout
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    await self._skip_long_line(reader, exc.consumed)
                    continue
                except asyncio.IncompleteReadError as exc:  # end of output; a last line may lack its newline
                    line = exc.partial
                    if not line.strip():
                        break
                line = line.strip()
                if line:
                    await self._deliver(line)
        except asyncio.IncompleteReadError:
            pass  # the output ended inside a line too long to keep
        finally:
            code = await self._exit_code()
            reason = f"process exited with code {code}" if code is not None else "stdout closed"
            self._pending.fail_all(reason)
            self.mark_lost(reason)

    async def _skip_long_line(self, reader: asyncio.StreamReader, consumed: int) -> None:
        """Read a line longer than `max_message_bytes` to its end without keeping it, and fail the call it
        answered; the process and every other call go on. `consumed` bytes of it are buffered already."""
        head = tail = b""
        while True:
            part = await reader.readexactly(consumed)
            head = head or part.lstrip()[:SAMPLE_BYTES]
            tail = (tail + part)[-SAMPLE_BYTES:]
            try:
                rest = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                consumed = exc.consumed
                continue
            tail = (tail + rest.rstrip())[-SAMPLE_BYTES:]
            break
        self._skipped_too_large(head, tail)

    async def _exit_code(self) -> int | None:
        if self._process is None:
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self._process.wait(), 1.0)
        return None

    async def _read_stderr(self) -> None:
        assert self._process and self._process.stderr
        while line := await self._process.stderr.readline():
            log.info("[%s] %s", self.name, line.decode("utf-8", errors="replace").rstrip())

    async def _write(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None or self.closed.is_set():
            raise UpstreamGone(self.name, self.close_reason or "not started")
        data = orjson.dumps(message) + b"\n"
        async with self._write_lock:
            try:
                process.stdin.write(data)
                await process.stdin.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise UpstreamGone(self.name, f"stdin closed: {exc}") from None

    async def aclose(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            # Closing stdin is the MCP way to ask a stdio server to exit; escalate if it ignores that.
            with contextlib.suppress(Exception):
                if process.stdin:
                    process.stdin.close()
            for sig_step in (process.terminate, process.kill):
                try:
                    await asyncio.wait_for(process.wait(), 2.0)
                    break
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        sig_step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 2.0)
        for task in self._tasks:
            task.cancel()
        self._pending.fail_all("connection closed")
        self.mark_lost("closed by the gateway")
