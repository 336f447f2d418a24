"""The SSE decoder used on upstream streams."""

from __future__ import annotations

from mcp_gateway.upstream.sse import SseDecoder


def test_sse_decoder_handles_split_chunks_crlf_comments_and_priming():
    decoder = SseDecoder()
    events = decoder.feed(b'id: 1\ndata: \nretry: 100\n\n: keep-alive\n\nevent: message\r\nid: 2\r\ndata: {"a"')
    assert events == []  # the priming event has no data and is not dispatched
    assert decoder.last_event_id == "2" and decoder.retry == 100  # ids count even before dispatch
    events = decoder.feed(b":1}\r\n\r\ndata: x\ndata: y\n\n")
    assert [(e.event, e.data, e.id) for e in events] == [("message", '{"a":1}', "2"), ("message", "x\ny", "2")]
