"""What a handshake-era (2025-11-25 and older) conversation remembers between its requests, on any
transport: the client's `initialize` data, its log level and resource subscriptions, and its dialogue
(requests in flight, requests awaiting the client's answer)."""

from __future__ import annotations

from typing import Protocol

from ..calls import Call, ClientContext
from ..pipeline import Pipeline
from .answer import Reply, answer
from .dialogue import Dialogue
from .message import Notification


class Session(Protocol):
    client: ClientContext
    dialogue: Dialogue

    async def set_log_level(self, level: str) -> None: ...

    async def subscribe(self, uri: str) -> None: ...

    async def unsubscribe(self, uri: str) -> None: ...


async def serve(pipeline: Pipeline, session: Session, call: Call) -> Reply:
    """Serve one request of the session, then remember what it changed."""
    reply = await answer(pipeline, call, session.dialogue)
    if reply.ok:
        await remember(session, call, reply)
    return reply


async def remember(session: Session, call: Call, reply: Reply) -> None:
    method = call.method
    if method == "logging/setLevel":
        await session.set_log_level(call.params["level"])
    elif method == "resources/subscribe" and reply.result.target is not None:
        await session.subscribe(reply.result.target)  # the canonical URI, as notifications will name it
    elif method == "resources/unsubscribe" and reply.result.target is not None:
        await session.unsubscribe(reply.result.target)


def notified(session: Session, message: Notification) -> None:
    """A client notification: `notifications/cancelled` stops a request in flight. The others need nothing
    (`initialized`; `roots/list_changed`: roots are asked for per call)."""
    if message.method == "notifications/cancelled":
        session.dialogue.cancel(message.params.get("requestId"))
