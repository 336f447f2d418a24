"""A local LLM backend that replays recorded real provider traffic (tests/fixtures, see its README).

It speaks the provider APIs the bridge calls, and picks what to answer from the model id it is asked for:
- OpenAI `/v1/chat/completions`, `/v1/embeddings`, `/v1/responses`: model `<cassette>` answers with the
  recorded response of `providers/openai/<cassette>.yaml` (status, headers and body, streams as recorded);
  `responses-<sample>` answers with `samples/response/responses/<sample>.json`;
- Anthropic `/v1/messages`: model `<sample>` -> `samples/response/anthropic/<sample>.json`;
- Bedrock `/model/<sample>/converse` and `/converse-stream` (the stream is made from the sample, as AWS
  event-stream frames); Gemini `/v1beta/models/<sample>:generateContent` and `:streamGenerateContent`;
- every API: `echo` answers a small fixed completion fast (the benchmark), `fault-<status>` answers that
  status, `fault-hang` never answers, `fault-midstream` dies after its first chunk.
Every request is recorded; `GET /_requests` returns them, `DELETE /_requests` forgets them.

    python -m tests.support.llm_server --port 8100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
SAMPLES = FIXTURES / "samples" / "response"

_ECHO = {
    "id": "chatcmpl-echo",
    "object": "chat.completion",
    "created": 1755137933,
    "model": "echo-1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop", "logprobs": None}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
_ECHO_BODY = orjson.dumps(_ECHO)


def _echo_stream(include_usage: bool) -> list[bytes]:
    base = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 1755137933, "model": "echo-1"}
    pieces = [{"role": "assistant", "content": ""}, {"content": "po"}, {"content": "ng"}]
    events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in pieces]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        events.append({**base, "choices": [], "usage": _ECHO["usage"]})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


class Replay:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.aborted: list[float] = []  # when a client left a slow stream early
        self._cassettes: dict[str, dict[str, Any]] = {}

    def record(self, request: web.Request, body: bytes) -> Any:
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = body.decode("utf-8", "replace")
        self.requests.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": parsed,
            }
        )
        del self.requests[:-200]
        return parsed

    def cassette(self, name: str) -> dict[str, Any] | None:
        if name not in self._cassettes:
            path = FIXTURES / "openai" / f"{name}.yaml"
            if not path.is_file():
                return None
            self._cassettes[name] = yaml.safe_load(path.read_text())["interactions"][0]
        return self._cassettes[name]


async def _fault(model: str, request: web.Request, stream: bool) -> web.StreamResponse | None:
    if model == "fault-hang":
        await asyncio.sleep(3600)
    if model.startswith("fault-") and model[6:].isdigit():
        status = int(model[6:])
        body = {"error": {"message": f"injected {status}", "type": "server_error", "code": None, "param": None}}
        return web.json_response(body, status=status, headers={"retry-after": "0"} if status == 429 else None)
    if model == "fault-midstream" and stream:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_echo_stream(False)[0])
        await asyncio.sleep(0.05)
        request.transport.close()  # type: ignore[union-attr]
        return response
    return None


async def openai_route(request: web.Request) -> web.StreamResponse:
    replay: Replay = request.app["replay"]
    raw = await request.read()
    body = replay.record(request, raw)
    model = body.get("model", "") if isinstance(body, dict) else ""
    stream = isinstance(body, dict) and body.get("stream") is True
    if request.path.startswith("/openai/deployments/"):  # Azure: the deployment names the cassette
        model = request.path.split("/")[3]
    fault = await _fault(model, request, stream)
    if fault is not None:
        return fault
    if model == "slow-stream" and stream:  # 30 chunks, 100 ms apart; notes a client that left early
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 1, "model": "slow-1"}
        try:
            for i in range(30):
                delta = {"role": "assistant", "content": f"{i} "} if i == 0 else {"content": f"{i} "}
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                await asyncio.sleep(0.1)
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            replay.aborted.append(time.time())
            raise
        return response
    if model == "echo":
        if not stream:
            return web.Response(body=_ECHO_BODY, content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for event in _echo_stream(include_usage):
            await response.write(event)
        await response.write_eof()
        return response
    if model.startswith("responses-"):
        return await _sample_reply(request, SAMPLES / "responses" / f"{model[10:]}.json")
    interaction = replay.cassette(model)
    if interaction is None:
        return web.json_response(
            {"error": {"message": f"no cassette {model}", "type": "invalid_request_error"}}, status=404
        )
    recorded = interaction["response"]
    content_type = recorded["headers"].get("Content-Type", ["application/json"])[0]
    return web.Response(status=recorded["code"], body=recorded["body"].encode(), headers={"content-type": content_type})


async def _sample_reply(request: web.Request, path: Path, stream_as_sse: bool = False) -> web.StreamResponse:
    if not path.is_file():
        return web.json_response(
            {"error": {"message": f"no sample {path.name}", "type": "not_found_error"}}, status=404
        )
    text = path.read_text()
    if text.lstrip().startswith(("event:", "data:")):
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for block in text.strip().split("\n\n"):
            await response.write(block.encode() + b"\n\n")
        await response.write_eof()
        return response
    if stream_as_sse:
        return web.Response(body=b"data: " + orjson.dumps(json.loads(text)) + b"\n\n", content_type="text/event-stream")
    return web.Response(body=text.encode(), content_type="application/json")


async def anthropic_route(request: web.Request) -> web.StreamResponse:
    replay: Replay = request.app["replay"]
    body = replay.record(request, await request.read())
    model = body.get("model", "")
    fault = await _fault(model, request, body.get("stream") is True)
    if fault is not None:
        if fault.status >= 400 and not model.startswith("fault-midstream"):
            kind = "rate_limit_error" if fault.status == 429 else "api_error"
            error = {"type": "error", "error": {"type": kind, "message": f"injected {fault.status}"}}
            return web.json_response(error, status=fault.status)
        return fault
    if body.get("stream") is True and (SAMPLES / "anthropic" / f"stream_{model}.json").is_file():
        model = f"stream_{model}"  # a route naming `basic` gets the streamed recording when it streams
    return await _sample_reply(request, SAMPLES / "anthropic" / f"{model}.json")


async def count_tokens_route(request: web.Request) -> web.StreamResponse:
    request.app["replay"].record(request, await request.read())
    return await _sample_reply(request, SAMPLES / "anthropic" / "count_tokens.json")


async def bedrock_route(request: web.Request) -> web.StreamResponse:
    from llm_bridge.aws.eventstream import encode_message

    replay: Replay = request.app["replay"]
    replay.record(request, await request.read())
    model, operation = request.match_info["model"], request.match_info["operation"]
    if model.startswith("fault-") and model[6:].isdigit():
        kind = "ThrottlingException" if model == "fault-429" else "InternalServerException"
        return web.json_response(
            {"message": f"injected {model[6:]}"}, status=int(model[6:]), headers={"x-amzn-ErrorType": kind}
        )
    if operation == "invoke":  # Titan embeddings
        return await _sample_reply(request, SAMPLES / "bedrock-titan" / f"{model}.json")
    path = SAMPLES / "bedrock" / f"{model}.json"
    if not path.is_file():
        return web.json_response(
            {"message": f"no sample {model}"}, status=404, headers={"x-amzn-ErrorType": "ResourceNotFoundException"}
        )
    sample = json.loads(path.read_text())
    if operation == "converse":
        return web.json_response(sample)
    response = web.StreamResponse(headers={"content-type": "application/vnd.amazon.eventstream"})
    await response.prepare(request)
    for event_type, payload in converse_events(sample):
        headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
        await response.write(encode_message(headers, orjson.dumps(payload)))
    await response.write_eof()
    return response


def converse_events(sample: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ConverseStream events a model would have sent for this Converse answer."""
    message = sample["output"]["message"]
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": message["role"]})]
    for index, block in enumerate(message["content"]):
        if "text" in block:
            text = block["text"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}))
        elif "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            arguments = json.dumps(use["input"])
            for piece in (arguments[:3], arguments[3:]):
                events.append(
                    ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})
                )
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"].get("reasoningText", {})
            delta = {"reasoningContent": {"text": reasoning.get("text", "")}}
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
            if reasoning.get("signature"):
                delta = {"reasoningContent": {"signature": reasoning["signature"]}}
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": sample.get("stopReason", "end_turn")}))
    usage = sample.get("usage") or {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
    return events


async def gemini_route(request: web.Request) -> web.StreamResponse:
    replay: Replay = request.app["replay"]
    replay.record(request, await request.read())
    model, _, operation = request.match_info["target"].partition(":")
    if model.startswith("fault-") and model[6:].isdigit():
        status = int(model[6:])
        error = {
            "error": {
                "code": status,
                "message": f"injected {status}",
                "status": "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL",
            }
        }
        return web.json_response(error, status=status)
    if operation == "batchEmbedContents":
        return await _sample_reply(request, SAMPLES / "vertex" / f"{model}.json")
    stream = operation == "streamGenerateContent"
    return await _sample_reply(request, SAMPLES / "vertex-gemini" / f"{model}.json", stream_as_sse=stream)


async def list_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app["replay"].requests)


async def list_aborted(request: web.Request) -> web.Response:
    return web.json_response(request.app["replay"].aborted)


async def clear_requests(request: web.Request) -> web.Response:
    request.app["replay"].requests.clear()
    request.app["replay"].aborted.clear()
    return web.json_response({"cleared": True})


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["replay"] = Replay()
    app["started"] = time.time()
    app.router.add_post("/v1/chat/completions", openai_route)
    app.router.add_post("/v1/embeddings", openai_route)
    app.router.add_post("/v1/responses", openai_route)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", openai_route)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", openai_route)
    app.router.add_post("/v1/messages", anthropic_route)
    app.router.add_post("/v1/messages/count_tokens", count_tokens_route)
    app.router.add_post("/model/{model}/{operation}", bedrock_route)
    app.router.add_post("/v1beta/models/{target}", gemini_route)
    app.router.add_post("/v1/projects/{project}/locations/{location}/publishers/google/models/{target}", gemini_route)
    app.router.add_get("/_requests", list_requests)
    app.router.add_delete("/_requests", clear_requests)
    app.router.add_get("/_aborted", list_aborted)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(
        make_app(), host="127.0.0.1", port=args.port, print=lambda *_: print("ready", flush=True), access_log=None
    )


if __name__ == "__main__":
    main()
