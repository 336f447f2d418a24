"""What outlives one request of a conversation: the client's requests still being served (so a
`notifications/cancelled` can stop one), and the requests the gateway sent the client that still wait for
its answer. A handshake-era HTTP session has one, a stdio connection has one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..jsonrpc import UPSTREAM_ERROR, McpError, notification, request
from .message import Response

Write = Callable[[bytes], Awaitable[None]]  # puts one encoded message on the client's stream


class Dialogue:
    def __init__(self, ask_prefix: str = "gw-") -> None:
        # The ids of our requests to the client name their asker, so a process that receives the answer can
        # route it to the one that asked (front/sessions.py).
        self._ask_prefix = ask_prefix
        self._ids = itertools.count(1)
        self.inflight: dict[Any, asyncio.Task[Any]] = {}
        self._cancelled: set[Any] = set()
        self._awaiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}

    # -- the client's requests -----------------------------------------------------------------------

    def started(self, request_id: Any, task: asyncio.Task[Any]) -> None:
        self.inflight[request_id] = task

    def ended(self, request_id: Any) -> None:
        self.inflight.pop(request_id, None)

    def cancel(self, request_id: Any) -> bool:
        """`notifications/cancelled`: stop serving that request (its answer becomes -32800)."""
        try:
            task = self.inflight.get(request_id)
        except TypeError:  # an unhashable id cannot name a request of ours
            return False
        if task is None or task.done():
            return False
        self._cancelled.add(request_id)
        task.cancel()
        return True

    def was_cancelled(self, request_id: Any) -> bool:
        """Did the client cancel this request? (Asked once, when its task saw the cancellation.)"""
        if request_id in self._cancelled:
            self._cancelled.discard(request_id)
            return True
        return False

    # -- our requests to the client ------------------------------------------------------------------

    def expect_answer(self) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        request_id = f"{self._ask_prefix}{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._awaiting[request_id] = future
        return request_id, future

    def answered(self, response: Response) -> bool:
        """Complete the request the client answers; False when nothing here waits for it."""
        try:
            future = self._awaiting.pop(response.id, None)
        except TypeError:
            return False
        if future is None or future.done():
            return False
        message = response.message
        if "error" in message:
            future.set_exception(McpError.from_error(message["error"]))
        else:
            result = message.get("result")
            future.set_result(result if isinstance(result, dict) else {})
        return True

    async def ask(self, method: str, params: dict[str, Any], write: Write) -> dict[str, Any]:
        """Send the client a request on `write` and wait for its answer. If the asking side gives up (the
        upstream withdrew its request, the call ended), the client is told to stop too."""
        request_id, future = self.expect_answer()
        try:
            await write(orjson.dumps(request(request_id, method, params)))
            return await future
        except asyncio.CancelledError:
            cancelled = notification("notifications/cancelled", {"requestId": request_id, "reason": "withdrawn"})
            await write(orjson.dumps(cancelled))
            raise
        finally:
            self._awaiting.pop(request_id, None)

    def close(self) -> None:
        """The conversation ended: whatever waits for the client's answer fails now."""
        for future in self._awaiting.values():
            if not future.done():
                future.set_exception(McpError(UPSTREAM_ERROR, "the client's session closed"))
        self._awaiting.clear()
