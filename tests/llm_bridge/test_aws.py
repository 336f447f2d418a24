"""The AWS codecs: SigV4 signing checked against botocore's own signer, and event-stream framing.

botocore is the reference here only (product code never imports it). Its clock is frozen by patching
`botocore.auth.get_current_datetime`, the one call `SigV4Auth.add_auth` takes the time from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import uuid
import zlib
from unittest import mock

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from llm_bridge.aws import sigv4
from llm_bridge.aws.eventstream import EventMessage, EventStreamDecoder, EventStreamError, encode_message
from llm_bridge.translate.bedrock import model_path

WHEN = dt.datetime(2024, 8, 12, 13, 14, 15)
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RUNTIME = "https://bedrock-runtime.us-east-1.amazonaws.com"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def botocore_headers(method, url, headers, body, *, service="bedrock", region="us-east-1", token=None):
    """What botocore's SigV4Auth adds to the same request at the same instant.

    botocore signs x-amz-content-sha256 only when the request carries it, and ours always adds it, so the
    reference request is given that header up front: both then sign the same header set.
    """
    all_headers = {**headers, "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    request = AWSRequest(method=method, url=url, headers=all_headers, data=body)
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        SigV4Auth(Credentials(AK, SK, token), service, region).add_auth(request)
    return request.headers


def ours(method, url, headers, body, *, service="bedrock", region="us-east-1", token=None, now=WHEN):
    return sigv4.sign(
        method, url, headers, body, region=region, service=service, access_key=AK, secret_key=SK,
        session_token=token, now=now,
    )  # fmt: skip


CONVERSE_URL = RUNTIME + model_path(SONNET)
JSON_BODY = json.dumps({"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}).encode()

CASES = {
    "converse": ("POST", CONVERSE_URL, {"Content-Type": "application/json"}, JSON_BODY, None),
    "converse-session-token": (
        "POST",
        CONVERSE_URL,
        {"Content-Type": "application/json"},
        JSON_BODY,
        "FwoGZXIvYXdzEXAMPLE//token==",
    ),
    "converse-stream": (
        "POST",
        RUNTIME + model_path(SONNET, stream=True),
        {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"},
        JSON_BODY,
        None,
    ),
    "inference-profile-arn": (
        "POST",
        RUNTIME
        + model_path(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0"
        ),
        {"Content-Type": "application/json"},
        JSON_BODY,
        None,
    ),
    "get-with-query": (
        "GET",
        "https://bedrock.us-east-1.amazonaws.com/foundation-models?byProvider=Anthropic&byOutputModality=TEXT&a=2&a=1",
        {},
        b"",
        None,
    ),
    "get-encoded-query": (
        "GET",
        "https://bedrock.us-east-1.amazonaws.com/inference-profiles?nextToken=ab%2Fcd%3D%3D&maxResults=10&flag",
        {},
        b"",
        "TOKEN",
    ),
    "port-spaces-and-unsigned-headers": (
        "POST",
        "http://localhost:8443/model/amazon.titan-embed-text-v2%3A0/invoke",
        {
            "Content-Type": "application/json",
            "X-Custom": "  a   b  ",
            "User-Agent": "test/1.0",
            "Expect": "100-continue",
        },
        b'{"inputText":"hi"}',
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sign_matches_botocore(case):
    method, url, headers, body, token = CASES[case]
    expected = botocore_headers(method, url, headers, body, token=token)
    got = ours(method, url, headers, body, token=token)
    assert got["authorization"] == expected["Authorization"]
    assert got["x-amz-date"] == expected["X-Amz-Date"] == "20240812T131415Z"
    assert got["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert got.get("x-amz-security-token") == token
    assert ("x-amz-security-token" in got) == (token is not None)


def test_botocore_client_sends_the_same_path_and_signature(monkeypatch):
    """A real botocore bedrock-runtime client: its wire path is model_path(), and its Authorization is ours."""
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    client = botocore.session.get_session().create_client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK,
        aws_session_token="TOKEN",
    )  # fmt: skip
    sent = {}

    class Captured(Exception):
        pass

    def add_payload_hash(request, **_):
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(request.body).hexdigest()

    def capture(request, **_):
        sent["request"] = request
        raise Captured

    client.meta.events.register("before-sign.bedrock-runtime.Converse", add_payload_hash)
    client.meta.events.register("before-send.bedrock-runtime.Converse", capture)
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN), pytest.raises(Captured):
        client.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    request = sent["request"]
    assert request.url == CONVERSE_URL
    assert CONVERSE_URL.endswith("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse")
    got = ours("POST", request.url, {"Content-Type": "application/json"}, request.body, token="TOKEN")
    assert got["authorization"] == request.headers["Authorization"].decode()


def test_canonical_path_encodes_the_wire_path_again():
    # The wire path carries %3A; AWS (and botocore) sign it as %253A for every service but S3.
    assert sigv4.canonical_path("/model/a.b-v1%3A0/converse") == "/model/a.b-v1%253A0/converse"
    assert sigv4.canonical_path("") == "/"
    assert sigv4.canonical_path("/a/./b/../c//d/") == "/a/c/d/"
    assert sigv4.canonical_query("b=2&a=x%20y&a=1") == "a=1&a=x%20y&b=2"


def test_aware_datetime_is_converted_to_utc():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    aware = ours("POST", CONVERSE_URL, {}, b"{}", now=dt.datetime(2024, 8, 12, 15, 14, 15, tzinfo=plus_two))
    naive = ours("POST", CONVERSE_URL, {}, b"{}")
    assert aware == naive


def test_signing_key_is_cached_per_day():
    sigv4._signing_key.cache_clear()
    ours("POST", CONVERSE_URL, {}, b"{}")
    ours("POST", CONVERSE_URL, {}, b"{}", now=WHEN + dt.timedelta(hours=3))
    assert sigv4._signing_key.cache_info().hits == 1
    ours("POST", CONVERSE_URL, {}, b"{}", now=WHEN + dt.timedelta(days=1))
    assert sigv4._signing_key.cache_info().misses == 2


def test_signature_depends_on_body_and_secret():
    base = ours("POST", CONVERSE_URL, {}, b"{}")["authorization"]
    assert ours("POST", CONVERSE_URL, {}, b"{ }")["authorization"] != base
    other = sigv4.sign("POST", CONVERSE_URL, {}, b"{}", region="us-east-1", service="bedrock", access_key=AK,
                       secret_key=SK + "x", now=WHEN)  # fmt: skip
    assert other["authorization"] != base


# ---------------------------------------------------------------------------------------------- event stream

EVENT_HEADERS = {":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event"}


def three_messages() -> tuple[bytes, list[EventMessage]]:
    messages = [
        EventMessage({":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}'),
        EventMessage(EVENT_HEADERS, json.dumps({"contentBlockIndex": 0, "delta": {"text": "Hi ☃"}}).encode()),
        EventMessage({":message-type": "event", ":event-type": "empty"}, b""),
    ]
    return b"".join(encode_message(m.headers, m.payload) for m in messages), messages


def test_round_trip_and_botocore_agrees():
    payload = b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}'
    frame = encode_message(EVENT_HEADERS, payload)
    assert EventStreamDecoder().feed(frame) == [EventMessage(EVENT_HEADERS, payload)]
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    (reference,) = list(buffer)
    assert reference.headers == EVENT_HEADERS and reference.payload == payload


def test_split_feeding_at_every_offset():
    data, expected = three_messages()
    for cut in range(len(data) + 1):
        decoder = EventStreamDecoder()
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == expected, cut
        assert decoder.pending == 0
    decoder = EventStreamDecoder()
    one_by_one = [m for i in range(len(data)) for m in decoder.feed(data[i : i + 1])]
    assert one_by_one == expected


def test_partial_message_is_held():
    data, _ = three_messages()
    decoder = EventStreamDecoder()
    assert (
        decoder.feed(data[:-3])
        and decoder.pending == len(encode_message({":message-type": "event", ":event-type": "empty"}, b"")) - 3
    )


@pytest.mark.parametrize("where", ["prelude-length", "prelude-crc", "header", "payload", "message-crc"])
def test_corruption_raises(where):
    frame = bytearray(encode_message(EVENT_HEADERS, b'{"delta":{"text":"x"}}'))
    offset = {"prelude-length": 2, "prelude-crc": 9, "header": 14, "payload": -8, "message-crc": -1}[where]
    frame[offset] ^= 0x01
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(frame))


def frame_of(header_block: bytes, payload: bytes) -> bytes:
    """A frame around raw header bytes, built here independently of encode_message."""
    total = 12 + len(header_block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_block))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + header_block + payload
    return head + struct.pack(">I", zlib.crc32(head))


def header(name: str, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + bytes([kind]) + value


def test_typed_headers_decode():
    an_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    block = b"".join(
        [
            header("t", 0, b""),
            header("f", 1, b""),
            header("byte", 2, struct.pack(">b", -7)),
            header("short", 3, struct.pack(">h", -300)),
            header("int", 4, struct.pack(">i", 70000)),
            header("long", 5, struct.pack(">q", 2**40)),
            header("bytes", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            header(":event-type", 7, struct.pack(">H", 8) + b"metadata"),
            header("ts", 8, struct.pack(">q", 1723468455123)),
            header("id", 9, an_id.bytes),
        ]
    )
    (message,) = EventStreamDecoder().feed(frame_of(block, b"{}"))
    assert message.payload == b"{}"
    assert message.headers == {
        "t": True,
        "f": False,
        "byte": -7,
        "short": -300,
        "int": 70000,
        "long": 2**40,
        "bytes": b"\x00\x01\x02",
        ":event-type": "metadata",
        "ts": dt.datetime(2024, 8, 12, 13, 14, 15, 123000, tzinfo=dt.UTC),
        "id": an_id,
    }


def test_unknown_header_type_and_truncated_header_raise():
    with pytest.raises(EventStreamError, match="unknown header type"):
        EventStreamDecoder().feed(frame_of(header("x", 42, b""), b""))
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(frame_of(header("s", 7, struct.pack(">H", 10) + b"abc"), b""))


def test_absurd_length_is_rejected_before_buffering():
    prelude = struct.pack(">II", 1 << 30, 0)
    with pytest.raises(EventStreamError, match="bad lengths"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
