"""AWS Bedrock Converse / ConverseStream answers -> canonical (OpenAI Chat Completions dicts): responses, stream
events, usage, stop reasons and errors, and Titan embeddings answers. The request side is bedrock.py, whose
docstring lists the mapping choices and which re-exports the public names of this module.

Usage: Bedrock's `inputTokens` excludes cache reads and writes (`totalTokens` is the sum of all four), so
`prompt_tokens` = input + cache read + cache write, as OpenAI counts cached tokens inside prompt_tokens.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def _table(**groups: str) -> dict[str, str]:
    """kind="name name ..." -> {name: kind}: many-to-one lookup tables kept short."""
    return {name: kind for kind, names in groups.items() for name in names.split()}


FINISH_REASONS = _table(
    stop="end_turn stop_sequence",
    length="max_tokens model_context_window_exceeded",
    tool_calls="tool_use",
    content_filter="guardrail_intervened content_filtered",
)
ERROR_TYPES = _table(
    invalid_request_error="ValidationException",
    permission_error="AccessDeniedException",
    authentication_error="UnrecognizedClientException InvalidSignatureException IncompleteSignatureException"
    " MissingAuthenticationTokenException ExpiredTokenException",
    not_found_error="ResourceNotFoundException",
    rate_limit_error="ThrottlingException ServiceQuotaExceededException TooManyRequestsException",
    # Stream exceptions arrive after HTTP 200: their name alone must tell a server fault.
    server_error="InternalServerException ServiceUnavailableException ModelStreamErrorException ModelErrorException"
    " ModelNotReadyException ModelTimeoutException",
)
STATUS_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


def chat_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    """Converse response -> chat.completion (Converse responses carry no model and no id: use `model`, make an id)."""
    blocks = ((body.get("output") or {}).get("message") or {}).get("content") or []
    choice = {"index": 0, "message": _message(blocks), "finish_reason": finish_reason(body.get("stopReason"))}
    out: dict[str, Any] = {
        "id": _new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }
    if body.get("usage"):
        out["usage"] = usage_of(body["usage"])
    return out


def _message(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    redacted: list[str] = []
    calls: list[dict[str, Any]] = []
    signature = None
    for block in blocks:
        if "text" in block:
            texts.append(block["text"])
        elif "citationsContent" in block:
            texts += [c.get("text", "") for c in block["citationsContent"].get("content") or []]
        elif "reasoningContent" in block:
            rc = block["reasoningContent"]
            if "reasoningText" in rc:
                reasoning.append(rc["reasoningText"].get("text", ""))
                signature = rc["reasoningText"].get("signature") or signature
            elif "redactedContent" in rc:
                redacted.append(rc["redactedContent"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = json.dumps(use.get("input") or {}, ensure_ascii=False, separators=(",", ":"))
            calls.append(
                {"id": use["toolUseId"], "type": "function", "function": {"name": use["name"], "arguments": arguments}}
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if signature:
        message["reasoning_signature"] = signature
    if redacted:
        message["reasoning_redacted"] = redacted
    if calls:
        message["tool_calls"] = calls
    return message


def finish_reason(stop_reason: str | None) -> str:
    """Converse stopReason -> OpenAI finish_reason (malformed output and unknown reasons read as a plain stop)."""
    return FINISH_REASONS.get(stop_reason or "", "stop")


def usage_of(usage: dict[str, Any]) -> dict[str, Any]:
    """Converse TokenUsage -> canonical usage; cache reads and writes count as prompt tokens (see module doc)."""
    read, write = usage.get("cacheReadInputTokens"), usage.get("cacheWriteInputTokens")
    prompt = (usage.get("inputTokens") or 0) + (read or 0) + (write or 0)
    completion = usage.get("outputTokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if read is not None or write is not None:
        out["prompt_tokens_details"] = {"cached_tokens": read or 0, "cache_creation_tokens": write or 0}
    return out


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class StreamToChat:
    """ConverseStream events -> chat.completion.chunk dicts, one instance per response."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._id = _new_id()
        self._created = int(time.time())
        self._tool_index: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_calls index

    def feed(self, event_type: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """One ConverseStream event (messageStart, contentBlockStart, contentBlockDelta, contentBlockStop,
        messageStop, metadata) -> chat.completion.chunk dicts."""
        if event_type == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "contentBlockStart":
            use = (payload.get("start") or {}).get("toolUse")
            if not use:
                return []
            index = self._tool_index[payload.get("contentBlockIndex", 0)] = len(self._tool_index)
            call = {"index": index, "id": use["toolUseId"], "type": "function"}
            return [self._chunk({"tool_calls": [{**call, "function": {"name": use["name"], "arguments": ""}}]})]
        if event_type == "contentBlockDelta":
            delta = self._delta(payload.get("contentBlockIndex", 0), payload.get("delta") or {})
            return [self._chunk(delta)] if delta else []
        if event_type == "messageStop":
            self.finish_reason = finish_reason(payload.get("stopReason"))
            return [self._chunk({}, self.finish_reason)]
        if event_type == "metadata" and payload.get("usage"):
            self.usage = usage_of(payload["usage"])
            if self.include_usage:
                return [{**self._chunk({}), "choices": [], "usage": self.usage}]
        return []

    def _delta(self, block_index: int, delta: dict[str, Any]) -> dict[str, Any] | None:
        if "text" in delta:
            return {"content": delta["text"]}
        if "reasoningContent" in delta:
            rc = delta["reasoningContent"]
            if "text" in rc:
                return {"reasoning_content": rc["text"]}
            if "signature" in rc:
                return {"reasoning_signature": rc["signature"]}
            if "redactedContent" in rc:
                return {"reasoning_redacted": [rc["redactedContent"]]}
        if "toolUse" in delta and block_index in self._tool_index:
            fragment = delta["toolUse"].get("input") or ""
            return {"tool_calls": [{"index": self._tool_index[block_index], "function": {"arguments": fragment}}]}
        return None  # citations and unknown deltas carry nothing the chat format has

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }


def error_of(status: int, body: bytes, error_type: str | None = None) -> tuple[str, str]:
    """A Bedrock error (JSON {"message": ...} or {"Message": ...}; type from the x-amzn-ErrorType header such as
    'ThrottlingException:http://...' or from the exception event) -> (OpenAI error type, message)."""
    message = ""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed, message = {}, body.decode(errors="replace").strip()
    if isinstance(parsed, dict):
        message = str(parsed.get("message") or parsed.get("Message") or message)
        error_type = error_type or parsed.get("__type")
    # 'ThrottlingException:http://internal...', 'com.amazon.coral.service#UnrecognizedClientException', or in a
    # stream the ':exception-type' header, which names the union member: 'throttlingException'.
    name = (error_type or "").split(":", 1)[0].rsplit("#", 1)[-1]
    name = name[:1].upper() + name[1:]
    kind = ERROR_TYPES.get(name) or STATUS_TYPES.get(status)
    if not kind:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    return kind, message or name or f"Bedrock returned HTTP {status}"


def titan_embeddings_response(bodies: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """The Titan answers, one per input in order -> an OpenAI embeddings list object."""
    data = [{"object": "embedding", "index": i, "embedding": b.get("embedding") or []} for i, b in enumerate(bodies)]
    tokens = sum(b.get("inputTextTokenCount") or 0 for b in bodies)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
