"""`CallRelay`: carries an upstream's in-flight messages back to the client call that caused them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..auth import Principal
from ..calls import Call
from ..jsonrpc import INVALID_REQUEST, McpError
from ..version import LOG_LEVELS

SAMPLING = "sampling/createMessage"
# Answers an upstream's sampling request for the caller (the gateway's own LLM routes), if configured; the third
# argument is the calling span's W3C context, so the completion joins the call's trace.
Sampler = Callable[[Principal, dict[str, Any], dict[str, str] | None], Awaitable[dict[str, Any]]]

# Server-to-client request -> the client capability it needs.
_REQUIRED_CAPABILITY = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}


class CallRelay:
    """What an upstream may do towards the client during one call: progress, log lines and server-to-client
    requests, each only as far as the client's declared capabilities allow."""

    __slots__ = ("_call", "_progress_token", "_trace_headers", "sampler")

    def __init__(self, call: Call, sampler: Sampler | None = None, trace_headers: dict[str, str] | None = None) -> None:
        self.sampler = sampler
        self.rebind(call, trace_headers)

    def rebind(self, call: Call, trace_headers: dict[str, str] | None = None) -> None:
        """Relay to `call` from now on: an MRTR retry takes over the stream of the request it resumes."""
        self._call = call
        self._trace_headers = trace_headers
        meta = call.params.get("_meta")
        self._progress_token = meta.get("progressToken") if isinstance(meta, dict) else None

    @property
    def client_capabilities(self) -> dict[str, Any]:
        capabilities = self._call.client.capabilities
        if self.sampler is not None and "sampling" not in capabilities:
            return {**capabilities, "sampling": {}}  # the gateway samples for clients that cannot
        return capabilities

    def answers(self, method: str) -> bool:
        """True when the gateway answers this server-to-client request itself (sampling, when configured)."""
        return self.sampler is not None and method == SAMPLING

    @property
    def client_info(self) -> dict[str, Any] | None:
        return self._call.client.client_info

    @property
    def log_level(self) -> str | None:
        return self._call.client.log_level

    @property
    def mrtr_passthrough(self) -> bool:
        return self._call.client.modern

    @property
    def wants_progress(self) -> bool:
        return self._progress_token is not None and self._call.sink is not None

    async def progress(self, params: dict[str, Any]) -> None:
        if self._progress_token is None or self._call.sink is None:
            return
        await self._call.sink.notify("notifications/progress", {**params, "progressToken": self._progress_token})

    async def log(self, params: dict[str, Any]) -> None:
        sink = self._call.sink
        if sink is None:
            return
        wanted = self._call.client.log_level
        if wanted is None and self._call.client.modern:
            return  # 2026-07-28: no log notifications unless the request asked for them
        level = params.get("level")
        if wanted in LOG_LEVELS and level in LOG_LEVELS and LOG_LEVELS.index(level) < LOG_LEVELS.index(wanted):
            return
        await sink.notify("notifications/message", params)

    def check_askable(self, method: str) -> None:
        """Refuse what the client cannot be asked: only declared capabilities are ever used."""
        capability = _REQUIRED_CAPABILITY.get(method)
        if capability is None:
            raise McpError(INVALID_REQUEST, f"the gateway does not relay {method} to clients")
        if capability not in self._call.client.capabilities:
            raise McpError(INVALID_REQUEST, f"the client did not declare the {capability} capability")

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """An upstream's server-to-client request: answered here when `answers(method)`, else the client's."""
        if self.answers(method):
            assert self.sampler is not None
            return await self.sampler(self._call.principal, params, self._trace_headers)
        self.check_askable(method)
        return await self._ask_client(method, params)

    async def _ask_client(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if self._call.sink is None:
            raise McpError(INVALID_REQUEST, "the client's request has no stream to ask on")
        return await self._call.sink.ask(method, params)
