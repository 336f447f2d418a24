"""Anthropic Messages -> canonical (OpenAI Chat Completions): backend responses and errors (`chat_response`,
`error_of`) and, for the /v1/messages front door, requests (`chat_request`).

The mapping choices of both directions are listed in anthropic.py, which writes the Anthropic shapes and
re-exports these functions. The effort budgets, the status <-> error type table and `with_cache` live here
because both directions use them; anthropic.py imports them from here.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..errors import openai_error_type
from .anthropic_stream import chat_usage, finish_reason_of, tool_arguments

THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576}
_CHAT_TOOL_CHOICE = {"none": "none", "any": "required", "auto": "auto"}
# status <-> Anthropic error type
ERROR_OF_STATUS = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error"}
ERROR_OF_STATUS |= {403: "permission_error", 404: "not_found_error", 413: "request_too_large"}
ERROR_OF_STATUS |= {429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}
_STATUS_OF_ERROR = {"api_error": 500} | {kind: status for status, kind in ERROR_OF_STATUS.items()}


def with_cache(block: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """Copy `cache_control` from the source part or tool onto the block: it travels both ways."""
    if source.get("cache_control"):
        block["cache_control"] = source["cache_control"]
    return block


# -- Anthropic response -> chat.completion ---------------------------------------------------------------------------


def chat_response(message: dict[str, Any]) -> dict[str, Any]:
    """Anthropic Messages response -> chat.completion (id, created, model from the message, choices, usage)."""
    text: list[str] = []
    reasoning: list[str] = []
    redacted: list[str] = []
    calls: list[dict[str, Any]] = []
    signature = None
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            signature = block.get("signature") or signature
        elif kind == "redacted_thinking":
            redacted.append(block.get("data") or "")
        elif kind == "tool_use":
            function = {"name": block.get("name") or "", "arguments": tool_arguments(block.get("input"))}
            calls.append({"id": block.get("id") or "", "type": "function", "function": function})
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
    if signature:
        out["reasoning_signature"] = signature
    if redacted:
        out["reasoning_redacted"] = redacted
    finish = finish_reason_of(message.get("stop_reason"))
    choice = {"index": 0, "message": out, "finish_reason": finish, "logprobs": None}
    return {
        "id": message.get("id") or "",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or "",
        "choices": [choice],
        "usage": chat_usage(message.get("usage") or {}),
    }


def error_of(status: int, body: bytes) -> tuple[str, str]:
    """An Anthropic error response -> (OpenAI error type, message). Robust to non-JSON bodies."""
    kind, message = None, None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
    elif isinstance(error, str):
        message = error
    if not isinstance(message, str) or not message:
        message = body.decode("utf-8", "replace").strip()[:1000] or f"HTTP {status}"
    if kind == "billing_error":
        return "insufficient_quota", message  # what OpenAI calls running out of credit
    # Anthropic's type says more than the status (an overloaded_error may come with a 200 stream), else the status
    return openai_error_type(_STATUS_OF_ERROR.get(kind, status) if isinstance(kind, str) else status), message


# -- front door: Anthropic request -> OpenAI chat request ------------------------------------------------------------


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _chat_part(block: dict[str, Any]) -> dict[str, Any] | None:
    kind, source = block.get("type"), block.get("source") or {}
    if kind == "text":
        return with_cache({"type": "text", "text": block.get("text") or ""}, block)
    if kind not in ("image", "document"):
        return None
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        part = {"type": "image_url", "image_url": {"url": url}}
        if kind == "document":
            part = {"type": "file", "file": {"file_data": url, "filename": block.get("title") or "document.pdf"}}
    elif source.get("type") == "url" and kind == "image":
        part = {"type": "image_url", "image_url": {"url": source.get("url", "")}}
    elif source.get("type") == "file":
        part = {"type": "file", "file": {"file_id": source.get("file_id", "")}}
    elif source.get("type") == "text":
        part = {"type": "text", "text": source.get("data") or ""}
    else:
        return None
    return with_cache(part, block)


def _chat_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone plain text part as a string, which every OpenAI-compatible server takes; anything else as parts."""
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return parts[0]["text"]
    return parts if parts else ""


def _chat_user(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Anthropic user turn -> tool messages (which must directly follow the tool calls), then a user message."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("type") != "tool_result":
            parts += [p for p in [_chat_part(block)] if p]
            continue
        result = [p for b in _as_blocks(block.get("content")) if (p := _chat_part(b))]
        text = [p for p in result if p["type"] == "text"]
        parts[:0] = [p for p in result if p["type"] != "text"]  # tool messages cannot carry images
        if text and block.get("cache_control"):
            text[-1] = {**text[-1], "cache_control": block["cache_control"]}
        out.append({"role": "tool", "tool_call_id": block.get("tool_use_id") or "", "content": _chat_content(text)})
    if parts:
        out.append({"role": "user", "content": _chat_content(parts)})
    return out


def _chat_assistant(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    parts = [p for b in blocks if b.get("type") == "text" and (p := _chat_part(b))]
    message = chat_response({"content": blocks})["choices"][0]["message"]
    message["content"] = _chat_content(parts) if parts else (None if message.get("tool_calls") else "")
    return message


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.get("name") or "", "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    if tool.get("strict"):
        fn["strict"] = True
    return with_cache({"type": "function", "function": fn}, tool)


def _reasoning_effort(request: dict[str, Any]) -> str | None:
    """Only when thinking is on: OpenAI rejects reasoning_effort for models that do not reason."""
    thinking = request.get("thinking") or {}
    effort = (request.get("output_config") or {}).get("effort")
    if thinking.get("type") not in ("enabled", "adaptive"):
        return None
    if effort:
        return "xhigh" if effort == "max" else effort
    if thinking.get("type") == "adaptive":
        return None  # the model decides, as the backend's default does
    budget = thinking.get("budget_tokens") or 0
    return next((name for name, size in THINKING_BUDGET.items() if size >= budget), "xhigh")


def chat_request(request: dict[str, Any]) -> dict[str, Any]:
    """Anthropic /v1/messages request (front door) -> OpenAI chat request."""
    messages: list[dict[str, Any]] = []
    if request.get("system"):
        parts = [p for b in _as_blocks(request["system"]) if (p := _chat_part(b))]
        messages.append({"role": "system", "content": _chat_content(parts)})
    for message in request.get("messages") or []:
        role, blocks = message.get("role"), _as_blocks(message.get("content"))
        if role == "assistant":
            messages.append(_chat_assistant(blocks))
        elif role == "system":
            messages.append({"role": "system", "content": _chat_content([p for b in blocks if (p := _chat_part(b))])})
        else:
            messages += _chat_user(blocks)
    out: dict[str, Any] = {"model": request.get("model") or "", "messages": messages}
    if request.get("max_tokens"):
        out["max_completion_tokens"] = request["max_tokens"]
    tools = [_chat_tool(t) for t in request.get("tools") or [] if t.get("type") in (None, "custom")]
    if tools:
        out["tools"] = tools
        choice = request.get("tool_choice") or {}
        if choice.get("type") == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name") or ""}}
        elif choice.get("type") in _CHAT_TOOL_CHOICE:
            out["tool_choice"] = _CHAT_TOOL_CHOICE[choice["type"]]
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    fmt = (request.get("output_config") or {}).get("format") or request.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt.get("schema")}}
    effort = _reasoning_effort(request)
    if effort:
        out["reasoning_effort"] = effort
    for key in ("temperature", "top_p", "top_k"):
        if request.get(key) is not None:
            out[key] = request[key]
    if request.get("stop_sequences"):
        out["stop"] = list(request["stop_sequences"])
    user = (request.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = user
    if request.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # Anthropic streams always end with usage
    return out
