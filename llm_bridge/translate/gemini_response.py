"""Gemini `generateContent` answers -> canonical: a whole response -> chat.completion, and Google API errors ->
OpenAI error types. The part/usage/finish-reason helpers come from gemini_stream.py, shared with the stream;
gemini.py re-exports both functions.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..errors import openai_error_type
from .gemini_stream import CallIds, finish_reason, google_extra, made_up_id, tool_call, usage_of

Json = dict[str, Any]

# google.rpc status -> OpenAI error type, for when the HTTP status says less (e.g. an error inside a 200 stream).
_ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "INTERNAL": "server_error",
    "UNAVAILABLE": "server_error",
    "UNKNOWN": "server_error",
    "DEADLINE_EXCEEDED": "server_error",
}


# --- response ------------------------------------------------------------------------------------------------


def chat_response(body: Json, model: str) -> Json:
    """generateContent response -> chat.completion (model: body's modelVersion if present else `model`;
    id: responseId or made up)."""
    ids = CallIds()
    choices = [_choice(c, position, ids) for position, c in enumerate(body.get("candidates") or [])]
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason): nothing was generated
        blocked = bool((body.get("promptFeedback") or {}).get("blockReason"))
        message = {"role": "assistant", "content": ""}
        choices = [{"index": 0, "message": message, "finish_reason": "content_filter" if blocked else "stop"}]
    result: Json = {
        "id": body.get("responseId") or made_up_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("modelVersion") or model,
        "choices": choices,
    }
    usage = usage_of(body.get("usageMetadata"))
    if usage is not None:
        result["usage"] = usage
    return result


def _choice(candidate: Json, position: int, ids: CallIds) -> Json:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[Json] = []
    signature: str | None = None
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "functionCall" in part:
            calls.append(tool_call(part, ids.next(part)))
            continue
        if isinstance(part.get("text"), str):
            (reasoning if part.get("thought") else text).append(part["text"])
        signature = part.get("thoughtSignature") or signature
    message: Json = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    if signature:
        message["extra_content"] = google_extra(signature)
    return {
        "index": candidate.get("index", position),
        "message": message,
        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
    }


# --- errors --------------------------------------------------------------------------------------------------


def error_of(status: int, body: bytes) -> tuple[str, str]:
    """A Google API error ({"error": {"code", "message", "status"}}, possibly a JSON array of those) -> (OpenAI
    error type, message)."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return openai_error_type(status), text[:500] or f"HTTP {status}"
    if isinstance(data, list) and data:  # streamGenerateContent without alt=sse answers with an array
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return openai_error_type(status), f"HTTP {status}"
    kind = _ERROR_TYPES.get(str(error.get("status"))) or openai_error_type(status)
    return kind, str(error.get("message") or f"HTTP {status}")
