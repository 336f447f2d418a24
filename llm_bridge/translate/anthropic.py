"""Anthropic Messages <-> canonical (OpenAI Chat Completions) translation. This module writes the Anthropic
shapes (requests to an Anthropic backend, the /v1/messages front door's responses and errors);
anthropic_to_chat.py reads them (backend responses and errors, front-door requests), re-exported here.

Mapping choices where the two APIs do not line up one to one:

- `response_format` json_schema -> `output_config.format` {type: json_schema, schema} (Anthropic's GA structured
  outputs, the shape of the installed SDK; the front door also reads the older top-level `output_format`). The way
  back gives a non-strict json_schema, since OpenAI's strict mode rejects schemas Anthropic accepts. json_object has
  no Anthropic equivalent: it becomes a system instruction asking for a JSON object.
- `reasoning_effort` -> `thinking` {type: enabled, budget_tokens} from THINKING_BUDGET. OpenAI counts reasoning inside
  max_completion_tokens, so an explicit limit caps the budget; without one max_tokens is the default plus the budget.
  Thinking stays off when the budget cannot reach Anthropic's minimum of 1024, when the tool choice forces a tool, or
  when the last assistant turn used tools without a thinking block (Anthropic rejects all three); it drops
  temperature/top_p/top_k (thinking only runs with the default sampling).
  The way back, only when thinking is enabled/adaptive: output_config.effort (max -> xhigh), else the smallest
  effort whose budget covers budget_tokens; adaptive without an effort leaves the backend's default.
- Thinking blocks -> `reasoning_content` (their text), `reasoning_signature` (the signature Anthropic needs to
  accept the block again) and `reasoning_redacted` (the opaque data of redacted_thinking blocks, a list). Requests
  replay them as blocks; reasoning without a signature is dropped since Anthropic rejects unsigned thinking.
- `cache_control` on content parts and tools travels both ways (the LiteLLM/OpenRouter convention for OpenAI shapes).
- Dropped for want of an equivalent: n, penalties, logit_bias, seed, logprobs, legacy `functions`, audio parts;
  server tools, tool_result `is_error`, URL documents. Temperature is clamped to Anthropic's 0..1 range, top_p
  only goes without a temperature (recent models reject both), whitespace-only stop sequences (which Anthropic
  rejects) are left out. An Anthropic file id becomes an OpenAI file part and comes back as a document block.
"""

from __future__ import annotations

from typing import Any

import orjson

from .anthropic_stream import anthropic_usage, stop_reason_of, tool_input
from .anthropic_to_chat import ERROR_OF_STATUS, THINKING_BUDGET, chat_request, chat_response, error_of, with_cache

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024  # Anthropic's floor for budget_tokens
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

_MEDIA = {"image/jpg": "image/jpeg"}  # Anthropic only knows the registered name
_TOOL_CHOICE = {"none": "none", "required": "any", "auto": "auto"}


# -- OpenAI chat request -> Anthropic request ------------------------------------------------------------------------


def _url_block(url: str, kind: str = "image") -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media = header[5:].split(";")[0] or "image/png"
        kind = "document" if media == "application/pdf" else kind
        return {"type": kind, "source": {"type": "base64", "media_type": _MEDIA.get(media, media), "data": data}}
    # http(s) as a URL source; other schemes (gs://) too, so the backend's own 400 names the problem
    return {"type": kind, "source": {"type": "url", "url": url}}


def _anthropic_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get(kind) or ""
        return with_cache({"type": "text", "text": text}, part) if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image if isinstance(image, str) else (image or {}).get("url", "")
        return with_cache(_url_block(url), part) if url else None
    if kind == "file":
        file = part.get("file") or {}
        if file.get("file_data"):
            return with_cache(_url_block(file["file_data"], "document"), part)
        if file.get("file_id"):
            return with_cache({"type": "document", "source": {"type": "file", "file_id": file["file_id"]}}, part)
    return None  # input_audio and unknown parts: Anthropic has nothing to put them in


def _blocks(content: Any) -> list[dict[str, Any]]:
    parts = content if isinstance(content, list) else [content] if isinstance(content, str) else []
    return [block for part in parts if (block := _anthropic_part(part))]


def _assistant_blocks(message: dict[str, Any], keep_unsigned: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    reasoning, signature = message.get("reasoning_content"), message.get("reasoning_signature")
    if reasoning and (signature or keep_unsigned):
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": signature or ""})
    blocks += [{"type": "redacted_thinking", "data": data} for data in message.get("reasoning_redacted") or []]
    blocks += _blocks(message.get("content"))
    if message.get("refusal"):
        blocks.append({"type": "text", "text": message["refusal"]})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        name, arguments = fn.get("name") or "", tool_input(fn.get("arguments"))
        blocks.append({"type": "tool_use", "id": call.get("id") or "", "name": name, "input": arguments})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or ""}
    content = message.get("content")
    if isinstance(content, list):
        if blocks := _blocks(content):
            block["content"] = blocks
    elif content:
        block["content"] = content if isinstance(content, str) else orjson.dumps(content).decode()
    return block


def _anthropic_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split out the system text and merge same-role neighbours: Anthropic wants alternating turns."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system += _blocks(message.get("content"))
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _assistant_blocks(message, keep_unsigned=False)
        else:
            role, blocks = "user", _blocks(message.get("content"))
        if not blocks:
            continue  # Anthropic rejects empty turns
        if out and out[-1]["role"] == role:
            merged = out[-1]["content"] + blocks
            # tool results must lead the user turn that answers a tool_use
            out[-1]["content"] = [b for b in merged if b["type"] == "tool_result"]
            out[-1]["content"] += [b for b in merged if b["type"] != "tool_result"]
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _anthropic_tool(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") or {}
    out: dict[str, Any] = {"name": fn.get("name") or "", "input_schema": fn.get("parameters") or {"type": "object"}}
    if fn.get("description"):
        out["description"] = fn["description"]
    if fn.get("strict"):
        out["strict"] = True
    return with_cache(out, tool)


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None = None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        out = {"type": "tool", "name": name} if name else {"type": "auto"}
    elif isinstance(choice, str):
        out = {"type": _TOOL_CHOICE.get(choice, "auto")}
    if parallel is False and (out is None or out["type"] != "none"):
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def _thinking_budget(effort: Any, max_tokens: int | None) -> int | None:
    budget = THINKING_BUDGET.get(effort) if isinstance(effort, str) else None
    if budget and max_tokens is not None:
        budget = min(budget, max_tokens - 1)  # Anthropic: budget_tokens < max_tokens
    return budget if budget and budget >= MIN_THINKING_BUDGET else None


def _unthought_tool_turn(messages: list[dict[str, Any]]) -> bool:
    """With thinking on, Anthropic wants the last assistant turn, if it used tools, to start with its thinking:
    not so when another backend (or a client) wrote that turn."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), [])
    uses_tools = any(b["type"] == "tool_use" for b in last)
    return uses_tools and last[0]["type"] not in ("thinking", "redacted_thinking")


def anthropic_request(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """OpenAI chat request -> Anthropic Messages request body, with `model` the backend's model id. Keeps `stream`."""
    system, messages = _anthropic_messages(chat.get("messages") or [])
    limit = chat.get("max_completion_tokens") or chat.get("max_tokens")
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": limit or DEFAULT_MAX_TOKENS}
    tools = [_anthropic_tool(t) for t in chat.get("tools") or [] if t.get("type", "function") == "function"]
    if tools:
        body["tools"] = tools
        choice = _tool_choice(chat.get("tool_choice"), chat.get("parallel_tool_calls"))
        if choice:
            body["tool_choice"] = choice
    fmt = chat.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif fmt.get("type") == "json_object":
        system.append({"type": "text", "text": JSON_INSTRUCTION})
    if system:
        body["system"] = system
    stop = chat.get("stop")
    stops = [s for s in ([stop] if isinstance(stop, str) else stop or []) if s.strip()]
    if stops:
        body["stop_sequences"] = stops
    forced = body.get("tool_choice", {}).get("type") in ("any", "tool")
    budget = None if forced or _unthought_tool_turn(messages) else _thinking_budget(chat.get("reasoning_effort"), limit)
    if budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if not limit:
            body["max_tokens"] = DEFAULT_MAX_TOKENS + budget
    else:
        # recent models reject temperature and top_p together: temperature, the usual knob, wins
        if chat.get("temperature") is not None:
            body["temperature"] = min(float(chat["temperature"]), 1.0)
        elif chat.get("top_p") is not None:
            body["top_p"] = chat["top_p"]
        if chat.get("top_k") is not None:
            body["top_k"] = chat["top_k"]
    if chat.get("user"):
        body["metadata"] = {"user_id": str(chat["user"])}
    if chat.get("stream"):
        body["stream"] = True
    return body


# -- front door: chat.completion -> Anthropic response ---------------------------------------------------------------


def anthropic_response(chat: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """chat.completion -> Anthropic Message object (model defaults to chat['model'])."""
    choice = (chat.get("choices") or [{}])[0]
    return {
        "id": chat.get("id") or "",
        "type": "message",
        "role": "assistant",
        "model": model or chat.get("model") or "",
        "content": _assistant_blocks(choice.get("message") or {}, keep_unsigned=True),
        "stop_reason": stop_reason_of(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(chat.get("usage")),
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """The Anthropic error envelope {"type":"error","error":{"type":..., "message":...}} with the type fitting the
    status (400 invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
    404 not_found_error, 413 request_too_large, 429 rate_limit_error, 504 timeout_error, 529 overloaded_error,
    other 5xx api_error, other 4xx invalid_request_error)."""
    kind = ERROR_OF_STATUS.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


__all__ = [
    "anthropic_request",
    "anthropic_response",
    "chat_request",
    "chat_response",
    "error_body",
    "error_of",
]
