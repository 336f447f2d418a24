"""A `Result`: what happened to a call — the answer or the error, who served it, its trace and its timings.
The pipeline returns one for every call; the fronts encode it for their transport and era."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..jsonrpc import INVALID_REQUEST, McpError


class ScopeRefusal(McpError):
    """The caller lacks OAuth scopes for what it asked: HTTP answers 403 with a step-up challenge naming
    `scopes` (every scope the operation needs); stdio has no challenge and sends the JSON-RPC error."""

    http_status = 403

    def __init__(self, scopes: frozenset[str], description: str) -> None:
        super().__init__(INVALID_REQUEST, description)
        self.scopes = scopes


@dataclass(slots=True)
class Result:
    payload: dict[str, Any] | None = None  # the JSON-RPC result (None when `error` is set)
    error: McpError | None = None
    upstream: str | None = None  # the upstream that served it; None when the gateway answered itself
    target: str | None = None  # the exposed name or canonical URI it was about
    trace_id: str | None = None  # set when the call was traced
    duration: float = 0.0  # seconds in the pipeline
    upstream_duration: float | None = None  # seconds the upstream exchange took, when there was one
    # Work that outlives this answer (a call parked on input_required): done when that work ends, so what a
    # call holds (a concurrency slot, its span) can be let go then rather than now.
    continues: asyncio.Future[None] | None = None

    @property
    def tool_error(self) -> bool:
        """A CallToolResult with isError: answered, but the tool failed."""
        payload = self.payload
        return payload is not None and payload.get("isError") is True

    @classmethod
    def failed(cls, error: McpError, **fields: Any) -> Result:
        return cls(error=error, **fields)
