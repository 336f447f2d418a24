"""An upstream MCP server running in this process, reached over the MCP SDK's in-memory message streams:
for embedding a server next to the gateway, and for driving the pipeline in tests without sockets.
`serve(read, write)` runs the server on the streams, e.g. `server.run(read, write, options)` of an SDK
`Server`; the gateway side is the same shared-stream transport as stdio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from .transport import StreamTransport, UpstreamGone

log = logging.getLogger("mcp_gateway.upstream")

Serve = Callable[[Any, Any], Awaitable[None]]  # (read stream, write stream) of SessionMessages


class MemoryTransport(StreamTransport):
    def __init__(self, name: str, serve: Serve) -> None:
        super().__init__(name)
        self._serve = serve
        self._to_server: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        to_server, server_reads = create_context_streams[SessionMessage | Exception](16)
        server_writes, from_server = create_context_streams[SessionMessage](16)
        self._to_server = to_server
        self._tasks = [
            asyncio.create_task(self._run_server(server_reads, server_writes), name=f"memory-server:{self.name}"),
            asyncio.create_task(self._read(from_server), name=f"memory-out:{self.name}"),
        ]

    async def _run_server(self, read: Any, write: Any) -> None:
        try:
            async with read, write:
                await self._serve(read, write)
        except Exception as exc:
            log.warning("in-process upstream %s stopped: %s", self.name, exc)
        finally:
            self._pending.fail_all("the in-process server stopped")
            self.mark_lost("the in-process server stopped")

    async def _read(self, stream: Any) -> None:
        with contextlib.suppress(Exception):
            async with stream:
                async for item in stream:
                    if isinstance(item, SessionMessage):
                        await self._deliver(item.message.model_dump_json(by_alias=True, exclude_unset=True))

    async def _write(self, message: dict[str, Any]) -> None:
        if self._to_server is None or self.closed.is_set():
            raise UpstreamGone(self.name, self.close_reason or "not started")
        await self._to_server.send(SessionMessage(jsonrpc_message_adapter.validate_python(message, by_name=False)))

    async def aclose(self) -> None:
        if self._to_server is not None:
            with contextlib.suppress(Exception):
                await self._to_server.aclose()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._pending.fail_all("connection closed")
        self.mark_lost("closed by the gateway")
