"""Resource subscriptions: `resources/subscribe` (handshake era) and `subscriptions/listen` with
`resourceSubscriptions` (2026-07-28) against upstreams of either era; one upstream watch per URI."""

from __future__ import annotations

import anyio
import pytest

from tests.support.client import CLIENT_ERAS, connect
from tests.support.processes import read_records

pytestmark = pytest.mark.anyio

UPSTREAM_ERAS = ["2025-11-25", "auto"]
EXPOSED = "up://up__item/0"  # the upstream's up://item/0, prefixed after the scheme
ORIGINAL = "up://item/0"


def _config(url: str, era: str) -> dict:
    return {"upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": era}}}


@pytest.mark.parametrize("upstream_era", UPSTREAM_ERAS)
@pytest.mark.parametrize("client_era", CLIENT_ERAS)
async def test_a_watched_resource_update_reaches_the_client(upstreams, gateway, client_era, upstream_era):
    _, url = upstreams("--name", "up", "--tools", "0", "--resources", "2")
    gw = gateway(_config(url, upstream_era), upstreams_ready=1)
    updated: list[str] = []

    async def on_message(message) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated":
            updated.append(str(message.params.uri))

    async with connect(gw.url, client_era, message_handler=on_message) as client:
        if client_era == "legacy":
            await client.subscribe_resource(EXPOSED)
            await anyio.sleep(0.3)  # the GET stream
            await client.call_tool("up__touch", {"uri": ORIGINAL})
            await client.call_tool("up__touch", {"uri": "up://item/1"})  # not subscribed: not delivered
            with anyio.fail_after(5):
                while not updated:
                    await anyio.sleep(0.05)
            await client.unsubscribe_resource(EXPOSED)
            await client.call_tool("up__touch", {"uri": ORIGINAL})
            await anyio.sleep(0.5)
            assert updated == [EXPOSED]
        else:
            async with client.listen(resource_subscriptions=[EXPOSED]) as subscription:
                assert list(subscription.honored.resource_subscriptions or []) == [EXPOSED]
                await anyio.sleep(0.3)  # the gateway re-listens upstream with the new URI
                await client.call_tool("up__touch", {"uri": "up://item/1"})
                await client.call_tool("up__touch", {"uri": ORIGINAL})
                events: list[str] = []
                with anyio.fail_after(5):
                    async for event in subscription:
                        events.append(str(event.uri))
                        break
            assert events == [EXPOSED]


async def test_the_upstream_is_told_once_however_many_clients_watch(upstreams, gateway, tmp_path):
    record = tmp_path / "up.jsonl"
    _, url = upstreams("--name", "up", "--tools", "0", "--resources", "1", "--record", str(record))
    gw = gateway(_config(url, "2025-11-25"), upstreams_ready=1)

    def upstream_saw(method: str) -> int:
        return sum(1 for r in read_records(record) if r.get("method") == method)

    async with connect(gw.url, "legacy") as first, connect(gw.url, "legacy") as second:
        await first.subscribe_resource(EXPOSED)
        await second.subscribe_resource(EXPOSED)
        assert upstream_saw("resources/subscribe") == 1
        await first.unsubscribe_resource(EXPOSED)
        assert upstream_saw("resources/unsubscribe") == 0  # the second client still watches it
        await second.unsubscribe_resource(EXPOSED)
        assert upstream_saw("resources/unsubscribe") == 1
