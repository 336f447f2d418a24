"""The calls an upstream session has in flight, and where each message the upstream sends on its own goes.

Besides answers an upstream sends progress and log messages for a call, server-to-client requests
(sampling, elicitation, roots, ping), cancellations of those, and notifications for everyone (list
changes, resource updates). `CallsInFlight.incoming` routes each to the call it belongs to (its relay) or
to the session's notification handler, and never waits for a client while doing so: the reader calling it
may be shared by every call of the upstream (stdio, legacy SSE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..jsonrpc import METHOD_NOT_FOUND, McpError, valid_id
from .outbox import Outbox
from .relay import Relay
from .transport import Transport

log = logging.getLogger("mcp_gateway.upstream")

NotificationHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


async def send_quietly(transport: Transport, message: dict[str, Any]) -> None:
    """Send a notification or answer whose failure changes nothing (the connection's loss is seen elsewhere)."""
    with contextlib.suppress(Exception):
        await transport.send(message)


class CallsInFlight:
    def __init__(self, name: str, transport: Transport, on_notification: NotificationHandler | None) -> None:
        self.name = name
        self._transport = transport
        self._on_notification = on_notification
        self._relays: dict[Any, Relay] = {}  # request id -> the relay of the call it serves, oldest first
        self._progress: dict[Any, Relay] = {}  # progress token (our request id) -> relay
        self._outboxes: dict[int, Outbox] = {}  # id(relay) -> the notifications on their way to its client
        self._pushes: dict[Any, asyncio.Task[None]] = {}  # the upstream's requests being answered
        self._background: set[asyncio.Task[None]] = set()

    def begin(self, request_id: Any, relay: Relay) -> bool:
        """A request for a client's call goes out; True when the client wants its progress."""
        self._relays[request_id] = relay
        if relay.wants_progress:
            self._progress[request_id] = relay
            return True
        return False

    def end(self, request_id: Any, relay: Relay | None, answered: bool) -> Outbox | None:
        """The request is over: the call's outbox, if it has one with something to flush before its answer."""
        self._relays.pop(request_id, None)
        self._progress.pop(request_id, None)
        outbox = self._outboxes.pop(id(relay), None) if self._outboxes and relay is not None else None
        if outbox is not None and not answered:
            outbox.close()  # failed or cancelled: what it had not delivered no longer matters
            return None
        return outbox

    def cancel_all(self) -> None:
        for task in [*self._pushes.values(), *self._background]:
            task.cancel()

    async def incoming(self, message: dict[str, Any], related: Relay | None) -> None:
        method = message.get("method")
        if not isinstance(method, str):
            return
        params = message.get("params") or {}
        # Whatever the upstream puts here is used as dict keys below: a non-object params, or an id, token or
        # request id that is not a string or number (JSON-RPC 2.0 §4), drops the message.
        if not isinstance(params, dict) or ("id" in message and not valid_id(message["id"])):
            self._transport.warnings.warning(
                "bad-message", "upstream %s sent a malformed %s; dropped", self.name, method
            )
            return
        if "id" in message:
            if method == "ping":
                await send_quietly(self._transport, {"jsonrpc": "2.0", "id": message["id"], "result": {}})
                return
            relay = related or self._guess_relay()
            task = asyncio.create_task(self._answer_push(message, method, params, relay))
            self._pushes[message["id"]] = task
            task.add_done_callback(lambda _t, key=message["id"]: self._pushes.pop(key, None))
            return
        if method == "notifications/progress":
            token = params.get("progressToken")
            relay = self._progress.get(token) if valid_id(token) else None
            if relay is not None:
                self._outbox(relay).put(True, params)
        elif method == "notifications/message":
            relay = related or self._guess_relay()
            if relay is not None:
                self._outbox(relay).put(False, params)
            else:
                log.info("upstream %s log [%s]: %s", self.name, params.get("level"), params.get("data"))
        elif method == "notifications/cancelled":
            request_id = params.get("requestId")
            task = self._pushes.get(request_id) if valid_id(request_id) else None
            if task is not None:
                task.cancel()
        elif self._on_notification is not None:
            # Never inline: handling a list change sends requests whose answers this very reader
            # (stdio, SSE) must deliver.
            task = asyncio.create_task(self._on_notification(method, params))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _outbox(self, relay: Relay) -> Outbox:
        # Never awaited here: this reader may serve every call of the upstream (stdio, SSE), and one client
        # that does not read its stream must not stall the others.
        outbox = self._outboxes.get(id(relay))
        if outbox is None:
            outbox = self._outboxes[id(relay)] = Outbox(self.name, relay)
        return outbox

    def _guess_relay(self) -> Relay | None:
        # Stream transports do not say which call a push belongs to: the newest call in flight is the best
        # guess, and exact whenever one call is in flight (HTTP upstreams always pass `related`).
        if not self._relays:
            return None
        return next(reversed(self._relays.values()))

    async def _answer_push(
        self, message: dict[str, Any], method: str, params: dict[str, Any], relay: Relay | None
    ) -> None:
        try:
            if relay is None:
                raise McpError(METHOD_NOT_FOUND, f"no client is waiting on '{self.name}' to answer {method}")
            result = await relay.ask(method, params)
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"], "result": result}
        except McpError as exc:
            response = {"jsonrpc": "2.0", "id": message["id"], "error": exc.to_error()}
        except asyncio.CancelledError:
            return
        await send_quietly(self._transport, response)
