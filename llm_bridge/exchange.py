"""One LLM request as the bridge saw it, and the hooks through which its host (the gateway) decides who
may do what and records what happened. The bridge never imports its host (docs/ARCHITECTURE.md, "Dependency rules")."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import BridgeError
from .usage import Usage


@dataclass(slots=True)
class Exchange:
    operation: str  # chat | embeddings | responses | messages
    front: str  # the wire format the client speaks: openai | anthropic
    original_model: str  # what the client asked for
    stream: bool
    request: dict[str, Any]  # the client's request, in the client's wire format
    caller: Any = None  # whatever the host's authenticate() returned
    headers: dict[bytes, bytes] = field(default_factory=dict)  # the client's request headers
    request_model: str | None = None  # what was sent to the backend
    response_model: str | None = None  # what the backend says answered
    backend: str | None = None
    provider: str | None = None
    response: dict[str, Any] | None = None  # the answer in canonical shape (streams: assembled), if recorded
    # The answer in the client's own wire format when that is not the canonical one (/v1/messages), if recorded.
    client_response: dict[str, Any] | None = None
    usage: Usage | None = None
    cost: float | None = None
    status: int = 200
    error: BridgeError | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (backend, outcome) per try
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    first_token: float | None = None  # monotonic time of the first streamed content
    ended: float | None = None  # monotonic
    state: dict[str, Any] = field(default_factory=dict)  # the host's own per-exchange data (spans, permits)
    settled: bool = False  # usage handed to the host's spend() hook

    def served_by(self, served: Any) -> None:
        """Note the router's `Served`: which backend answered, with which model id, after which tries."""
        self.backend = served.backend
        self.provider = served.provider.kind
        self.request_model = served.model
        self.attempts = served.attempts

    @property
    def duration(self) -> float:
        end = self.ended if self.ended is not None else time.monotonic()
        return end - self.started_monotonic

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started_monotonic


class Hooks(Protocol):
    """What the host decides and records. Every method may raise BridgeError to refuse."""

    async def authenticate(self, headers: dict[bytes, bytes], front: str) -> Any:
        """The caller behind these headers (raise BridgeError(401) to refuse)."""

    def may_use(self, caller: Any, model: str) -> bool:
        """Whether the caller may see and use a model name (lists and requests)."""

    async def admit(self, exchange: Exchange) -> None:
        """Before any backend is asked: budgets, rate limits (raise BridgeError(429) to refuse)."""

    def outgoing_headers(self, exchange: Exchange) -> dict[str, str] | None:
        """Headers to add to the backend request (trace context)."""

    async def spend(self, exchange: Exchange) -> None:
        """The exchange's usage is known (or never will be): count it against budgets. Called once, before
        the answer's last bytes go out when it succeeds, else before finish()."""

    async def finish(self, exchange: Exchange) -> None:
        """After the answer (or the error) went out: usage into budgets, spans, metrics, the access log."""


class OpenHooks:
    """Everyone may use everything; nothing is recorded. For using the bridge on its own."""

    async def authenticate(self, headers: dict[bytes, bytes], front: str) -> Any:
        return None

    def may_use(self, caller: Any, model: str) -> bool:
        return True

    async def admit(self, exchange: Exchange) -> None:
        return None

    def outgoing_headers(self, exchange: Exchange) -> dict[str, str] | None:
        return None

    async def spend(self, exchange: Exchange) -> None:
        return None

    async def finish(self, exchange: Exchange) -> None:
        return None
