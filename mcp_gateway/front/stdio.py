"""The stdio front (`mcp-gateway stdio`): one client on stdin/stdout, e.g. Claude Desktop or Goose.

Newline-delimited JSON-RPC, both eras: `initialize` opens a handshake-era conversation; a request carrying
the 2026-07-28 `_meta` envelope is served statelessly (no requests to the client: the MRTR bridge turns
upstream pushes into `input_required`; `subscriptions/listen` streams tagged notifications until the client
sends `notifications/cancelled` for it). Each request runs as its own task, so a slow tool never blocks the
next message; a malformed line is answered with its JSON-RPC error and the front goes on. Everything that
is not protocol goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from typing import Any, Protocol

import orjson

from ..auth.principal import Principal
from ..calls import LOCAL_PRINCIPAL, Call, ClientContext
from ..catalog.sync import ChangeListener
from ..conversation import handshake
from ..conversation.answer import answer
from ..conversation.dialogue import Dialogue
from ..conversation.era import has_envelope, modern_client
from ..conversation.listen import Listen
from ..conversation.message import Invalid, Notification, Request, Response, parse
from ..jsonrpc import INVALID_REQUEST, McpError, error_message, notification
from ..pipeline import Pipeline
from ..upstream.watches import ResourceWatches
from ..version import LEGACY_VERSION

log = logging.getLogger("mcp_gateway.front")

_LINE_LIMIT = 64 * 1024 * 1024


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class ChangeSource(Protocol):
    def on_change(self, listener: ChangeListener) -> None: ...


class _StdioSession:
    """The one handshake-era conversation a stdio connection can hold (`handshake.Session`)."""

    def __init__(self, watches: ResourceWatches) -> None:
        self.client = ClientContext(protocol_version=LEGACY_VERSION)
        self.dialogue = Dialogue("gw-")
        self.opened = False  # `initialize` was answered: list changes go to this client
        self.subscriptions: set[str] = set()
        self._watches = watches

    async def set_log_level(self, level: str) -> None:
        self.client.log_level = level

    async def subscribe(self, uri: str) -> None:
        if uri not in self.subscriptions and await self._watches.watch(uri):
            self.subscriptions.add(uri)

    async def unsubscribe(self, uri: str) -> None:
        if uri in self.subscriptions:
            self.subscriptions.discard(uri)
            await self._watches.unwatch(uri)


class StdioFront:
    def __init__(
        self,
        pipeline: Pipeline,
        watches: ResourceWatches,
        changes: ChangeSource,
        reader: asyncio.StreamReader,
        writer: Writer,
        principal: Principal = LOCAL_PRINCIPAL,
    ) -> None:
        self._pipeline = pipeline
        self._watches = watches
        self._reader = reader
        self._writer = writer
        self._principal = principal
        self._write_lock = asyncio.Lock()
        self._session = _StdioSession(watches)
        self._listens: dict[Any, Listen] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        changes.on_change(self._on_change)

    async def run(self) -> None:
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:  # a line past the reader's limit: it cannot be a message we serve
                await self._write(error_message(None, McpError(INVALID_REQUEST, "message too large")))
                continue
            if not line:
                break
            line = line.strip()
            if line:
                await self._dispatch(line)
        for task in list(self._tasks):
            task.cancel()
        for listen in self._listens.values():
            await listen.close(self._watches)
        self._session.dialogue.close()

    async def _write(self, data: bytes) -> None:
        async with self._write_lock:
            self._writer.write(data + b"\n")
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def _dispatch(self, line: bytes) -> None:
        try:
            message = parse(line)
        except Invalid as invalid:
            await self._write(error_message(invalid.id, invalid.error))
            return
        if isinstance(message, Response):
            self._session.dialogue.answered(message)
        elif isinstance(message, Notification):
            await self._notified(message)
        elif has_envelope(message.method, message.params):
            await self._modern(message)
        elif message.method == "initialize":
            await self._initialize(message)
        else:
            call = Call(
                message.method,
                message.params,
                self._session.client,
                self._principal,
                message.id,
                sink=self,
                transport="pipe",
            )
            self._spawn(self._serve_legacy(call))

    async def _notified(self, message: Notification) -> None:
        if message.method == "notifications/cancelled":
            listen = self._listens.pop(_hashable(message.params.get("requestId")), None)
            if listen is not None:
                await listen.close(self._watches)
        handshake.notified(self._session, message)

    async def _initialize(self, message: Request) -> None:
        client = ClientContext.from_initialize(message.params)
        client.session_id = f"stdio-{uuid.uuid4().hex[:16]}"  # one conversation, one session (session.id)
        call = Call("initialize", message.params, client, self._principal, message.id, transport="pipe")
        reply = await answer(self._pipeline, call)
        if reply.ok:
            self._session.client = client
            self._session.opened = True
        await self._write(reply.body)

    async def _modern(self, message: Request) -> None:
        try:
            client = modern_client(message.method, message.params)
        except McpError as refused:
            await self._write(error_message(message.id, refused))
            return
        call = Call(
            message.method, message.params, client, self._principal, message.id, sink=_NoAsking(self), transport="pipe"
        )
        if message.method == "subscriptions/listen":
            await self._listen(call)
            return
        self._spawn(self._serve_modern(call))

    async def _listen(self, call: Call) -> None:
        reply = await answer(self._pipeline, call)
        if not reply.ok:
            await self._write(reply.body)
            return
        assert reply.result.payload is not None
        listen = Listen(call.request_id, reply.result.payload["notifications"])
        self._listens[_hashable(call.request_id)] = listen
        await self._write(listen.acknowledgement())

    async def _serve_legacy(self, call: Call) -> None:
        reply = await handshake.serve(self._pipeline, self._session, call)
        await self._write(reply.body)

    async def _serve_modern(self, call: Call) -> None:
        reply = await answer(self._pipeline, call, self._session.dialogue)
        await self._write(reply.body)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # CallSink of handshake-era calls: stdio has one stream, shared by every call.
    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._write(orjson.dumps(notification(method, params)))

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._session.dialogue.ask(method, params, self._write)

    async def _on_change(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        # Handshake era: to the conversation `initialize` opened; 2026-07-28: to matching listens.
        session = self._session
        if session.opened and (uri is None or uri in session.subscriptions):
            await self.notify(method, params)
        for listen in self._listens.values():
            listen.offer(method, params, uri)
            while not listen.queue.empty():
                await self._write(listen.queue.get_nowait())


class _NoAsking:
    """The sink of a 2026-07-28 request on stdio: notifications only; the server MUST NOT send requests."""

    def __init__(self, front: StdioFront) -> None:
        self._front = front

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self._front.notify(method, params)

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise McpError(INVALID_REQUEST, f"{method} cannot be sent to a 2026-07-28 client")


def _hashable(value: Any) -> Any:
    """Request ids are strings or numbers; anything else (a hostile notification's) names nothing."""
    return value if isinstance(value, str | int | float) else None


async def serve_stdio(
    pipeline: Pipeline, watches: ResourceWatches, changes: ChangeSource, principal: Principal
) -> None:
    """Serve one client over this process's stdin/stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    await StdioFront(pipeline, watches, changes, reader, writer, principal).run()
