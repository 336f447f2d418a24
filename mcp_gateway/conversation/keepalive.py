"""Long-lived streams (the handshake-era GET stream, `subscriptions/listen`): queued messages go out as they
come, with a keep-alive comment after each quiet interval so proxies and clients do not time the stream
out, until the stream is told to end (an empty item) or the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

KEEPALIVE_SECONDS = 15.0


async def pump(
    queue: asyncio.Queue[bytes],
    send: Callable[[bytes], Awaitable[None]],
    keepalive: bytes,
    *,
    interval: float = KEEPALIVE_SECONDS,
    on_quiet: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Send each queued item until an empty one arrives; `keepalive` (and `on_quiet`) after each quiet
    `interval`."""
    while True:
        try:
            data = await asyncio.wait_for(queue.get(), interval)
        except TimeoutError:
            await send(keepalive)
            if on_quiet is not None:
                await on_quiet()
            continue
        if not data:
            return
        await send(data)


def end(queue: asyncio.Queue[bytes]) -> None:
    """Ask the stream fed by `queue` to end (the empty item), even when the queue is full."""
    try:
        queue.put_nowait(b"")
    except asyncio.QueueFull:
        queue.get_nowait()
        queue.put_nowait(b"")
