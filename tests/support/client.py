"""The real `mcp` SDK client, connected to a gateway the way an agent would."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client
from mcp_types import CallToolResult


def connect(url: str, **kwargs: Any) -> Client:
    """`async with connect(url) as client:` — caching off so every list hits the gateway."""
    kwargs.setdefault("cache", None)
    return Client(url, **kwargs)


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
