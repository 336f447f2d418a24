"""The real `mcp` SDK client, connected to a gateway the way an agent would."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client
from mcp_types import CallToolResult

# Client eras: the handshake era (`initialize`, a session) and the stateless 2026-07-28 revision.
CLIENT_ERAS = ("legacy", "modern")
_MODES = {"legacy": "legacy", "modern": "2026-07-28", "auto": "auto"}


def connect(url: str, era: str = "auto", **kwargs: Any) -> Client:
    """`async with connect(url) as client:` — caching off so every list hits the gateway.

    `era` pins the client's protocol: "legacy", "modern", or "auto" (probe, as agents do)."""
    kwargs.setdefault("cache", None)
    return Client(url, mode=_MODES[era], **kwargs)


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def echo_of(result: CallToolResult) -> dict[str, Any]:
    """The scripted server's echo payload: {"server", "tool", "arguments"}."""
    return json.loads(text_of(result))


async def all_tools(client: Client) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools
