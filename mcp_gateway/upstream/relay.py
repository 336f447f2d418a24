"""What an upstream needs from the downstream call that caused a request.

The core implements `Relay` per call; upstream code only sees this protocol, so it never learns about
transports, sessions or eras on the client side.
"""

from __future__ import annotations

from typing import Any, Protocol


class Relay(Protocol):
    @property
    def client_capabilities(self) -> dict[str, Any]:
        """Capabilities the downstream client declared (for this request, or its session)."""
        ...

    @property
    def client_info(self) -> dict[str, Any] | None: ...

    @property
    def log_level(self) -> str | None: ...

    @property
    def mrtr_passthrough(self) -> bool:
        """True when the client speaks 2026-07-28 and takes `input_required` results itself."""
        ...

    @property
    def wants_progress(self) -> bool:
        """True when the client asked for progress on this request."""
        ...

    def answers(self, method: str) -> bool:
        """True when the gateway answers this server-to-client request itself (never reaches the client)."""
        ...

    async def progress(self, params: dict[str, Any]) -> None:
        """Forward `notifications/progress` params (the token is rewritten by the relay)."""

    async def log(self, params: dict[str, Any]) -> None:
        """Forward `notifications/message` params."""

    async def ask(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a server-to-client request (sampling, elicitation, roots) and return its result.

        Raises `McpError` when the client cannot be asked (capability not declared, no back channel).
        """
        ...
