"""Pure pieces of the wire: the SSE decoder and sealed session ids."""

from __future__ import annotations

from mcp_gateway.front.sessions import SessionSealer
from mcp_gateway.upstream.sse import SseDecoder


def test_sse_decoder_handles_split_chunks_crlf_comments_and_priming():
    decoder = SseDecoder()
    events = decoder.feed(b'id: 1\ndata: \nretry: 100\n\n: keep-alive\n\nevent: message\r\nid: 2\r\ndata: {"a"')
    assert events == []  # the priming event has no data and is not dispatched
    assert decoder.last_event_id == "2" and decoder.retry == 100  # ids count even before dispatch
    events = decoder.feed(b":1}\r\n\r\ndata: x\ndata: y\n\n")
    assert [(e.event, e.data, e.id) for e in events] == [("message", '{"a":1}', "2"), ("message", "x\ny", "2")]


def test_sealed_session_round_trip_and_tamper_detection():
    sealer = SessionSealer("secret")
    token = sealer.seal({"v": "2025-11-25", "c": {"sampling": {}}})
    assert sealer.open(token) == {"v": "2025-11-25", "c": {"sampling": {}}}
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert sealer.open(tampered) is None
    assert SessionSealer("other").open(token) is None
    assert sealer.open("garbage") is None
    assert sealer.open(token, bound_to=b"tenant-b") is None


def test_a_sealed_session_is_adopted_by_another_process_registry_but_not_after_it_ended():
    from mcp_gateway.core.call import ClientContext
    from mcp_gateway.front.sessions import SessionRegistry

    first = SessionRegistry(SessionSealer("shared"), idle_timeout=60)
    second = SessionRegistry(SessionSealer("shared"), idle_timeout=60)
    session = first.create(ClientContext("2025-11-25", {"sampling": {}}, {"name": "c", "version": "1"}))
    adopted = second.get(session.sid)
    assert adopted is not None
    assert adopted.client.capabilities == {"sampling": {}} and adopted.client.client_info == {
        "name": "c",
        "version": "1",
    }
    assert SessionRegistry(SessionSealer("other"), idle_timeout=60).get(session.sid) is None
    second.end(session.sid)
    assert second.get(session.sid) is None  # ended here: not adopted again
