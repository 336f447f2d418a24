"""One open `subscriptions/listen` stream (2026-07-28): the notifications its client asked for (what the
pipeline honoured), tagged with the listen's subscription id, in a bounded queue that the front drains.
A client that stops reading loses notifications (logged), never the gateway's memory."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from ..pipeline.methods.listen import LISTEN_FLAGS, SUBSCRIPTIONS
from ..upstream.watches import ResourceWatches
from ..version import META_SUBSCRIPTION

log = logging.getLogger("mcp_gateway.conversation")

_QUEUE = 1024


class Listen:
    __slots__ = ("_dropped", "honored", "methods", "queue", "subscription_id", "uris")

    def __init__(self, subscription_id: Any, honored: dict[str, Any]) -> None:
        self.subscription_id = subscription_id
        self.honored = honored
        self.methods = {LISTEN_FLAGS[flag] for flag in LISTEN_FLAGS if honored.get(flag)}
        self.uris: set[str] = set(honored.get(SUBSCRIPTIONS) or ())
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_QUEUE)
        self._dropped = 0

    def acknowledgement(self) -> bytes:
        params = {"_meta": {META_SUBSCRIPTION: self.subscription_id}, "notifications": self.honored}
        return orjson.dumps({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": params})

    def ending(self) -> bytes:
        """The graceful end of the stream: the listen request's result."""
        result = {"resultType": "complete", "_meta": {META_SUBSCRIPTION: self.subscription_id}}
        return orjson.dumps({"jsonrpc": "2.0", "id": self.subscription_id, "result": result})

    def offer(self, method: str, params: dict[str, Any], uri: str | None) -> None:
        if uri is not None:
            if uri not in self.uris:
                return
        elif method not in self.methods:
            return
        meta = {**(params.get("_meta") or {}), META_SUBSCRIPTION: self.subscription_id}
        data = orjson.dumps({"jsonrpc": "2.0", "method": method, "params": {**params, "_meta": meta}})
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("a client's listen stream is not read; %d notification(s) dropped", self._dropped)

    async def close(self, watches: ResourceWatches) -> None:
        uris, self.uris = self.uris, set()
        for uri in uris:
            await watches.unwatch(uri)
