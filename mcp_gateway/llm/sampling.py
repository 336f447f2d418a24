"""MCP sampling answered by the gateway: an upstream's `sampling/createMessage` becomes a chat completion
through the LLM bridge (the caller's policy, budgets and records apply), instead of a request to a client
that may not be able to sample at all."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from llm_bridge.bridge import Bridge
from llm_bridge.errors import BridgeError

from ..auth import Principal
from ..jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, McpError

log = logging.getLogger("mcp_gateway.llm")

_STOP_REASONS = {"stop": "endTurn", "length": "maxTokens", "tool_calls": "toolUse", "content_filter": "endTurn"}


class Sampler:
    def __init__(self, bridge: Bridge, model: str) -> None:
        self.bridge = bridge
        self.model = model

    async def __call__(
        self, principal: Principal, params: dict[str, Any], trace_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        request = chat_request(params, self._model_for(principal, params))
        headers = {k.encode(): v.encode() for k, v in trace_headers.items()} if trace_headers else None
        try:
            data = await self.bridge.complete(principal, request, front="mcp-sampling", headers=headers)
        except BridgeError as exc:
            code = INVALID_PARAMS if exc.status in (400, 404, 422) else INTERNAL_ERROR
            raise McpError(code, f"sampling through the gateway failed: {exc.message}") from None
        return sampling_result(data)

    def _model_for(self, principal: Principal, params: dict[str, Any]) -> str:
        """The first model hint naming a model this caller may use, else the configured sampling model."""
        hints = (params.get("modelPreferences") or {}).get("hints") or []
        usable = self.bridge.models(principal)
        for hint in hints:
            name = hint.get("name") if isinstance(hint, dict) else None
            if isinstance(name, str) and name:
                for model in usable:
                    if name in model:
                        return model
        return self.model


def chat_request(params: dict[str, Any], model: str) -> dict[str, Any]:
    """CreateMessageRequest params -> an OpenAI chat request."""
    messages: list[dict[str, Any]] = []
    if isinstance(params.get("systemPrompt"), str) and params["systemPrompt"]:
        messages.append({"role": "system", "content": params["systemPrompt"]})
    for message in params.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise McpError(INVALID_PARAMS, "sampling messages need a role of user or assistant")
        messages.extend(_messages(message["role"], message.get("content")))
    request: dict[str, Any] = {"model": model, "messages": messages}
    if isinstance(params.get("maxTokens"), int):
        request["max_tokens"] = params["maxTokens"]
    if isinstance(params.get("temperature"), int | float):
        request["temperature"] = params["temperature"]
    if isinstance(params.get("stopSequences"), list) and params["stopSequences"]:
        request["stop"] = params["stopSequences"]
    tools = params.get("tools")
    if isinstance(tools, list) and tools:
        request["tools"] = [_tool(tool) for tool in tools if isinstance(tool, dict)]
        choice = (params.get("toolChoice") or {}).get("mode")
        if choice in ("auto", "required", "none"):
            request["tool_choice"] = choice
    return request


def _messages(role: str, content: Any) -> list[dict[str, Any]]:
    """One sampling message (its content a block or a list of blocks) -> chat messages."""
    blocks = content if isinstance(content, list) else [content]
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            url = f"data:{block.get('mimeType', 'image/png')};base64,{block.get('data', '')}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "audio":
            fmt = str(block.get("mimeType", "audio/wav")).rsplit("/", 1)[-1]
            parts.append({"type": "input_audio", "input_audio": {"data": block.get("data", ""), "format": fmt}})
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            call = {
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": arguments},
            }
            calls.append(call)
        elif kind == "tool_result":
            text = "".join(c.get("text", "") for c in block.get("content") or [] if isinstance(c, dict))
            results.append({"role": "tool", "tool_call_id": block.get("toolUseId"), "content": text})
        else:
            raise McpError(INVALID_PARAMS, f"sampling content of type {kind!r} is not supported")
    out: list[dict[str, Any]] = list(results)
    if parts or calls:
        simple = len(parts) == 1 and parts[0]["type"] == "text"
        message: dict[str, Any] = {"role": role, "content": parts[0]["text"] if simple else (parts or None)}
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool.get("name"), "parameters": tool.get("inputSchema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def sampling_result(chat: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion -> CreateMessageResult."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = message.get("tool_calls") or []
    content: Any
    if calls:
        content = [
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": (call.get("function") or {}).get("name"),
                "input": _arguments((call.get("function") or {}).get("arguments")),
            }
            for call in calls
        ]
        if message.get("content"):
            content.insert(0, {"type": "text", "text": message["content"]})
    else:
        content = {"type": "text", "text": message.get("content") or ""}
    return {
        "role": "assistant",
        "content": content,
        "model": chat.get("model") or "",
        "stopReason": _STOP_REASONS.get(choice.get("finish_reason") or "stop", "endTurn"),
    }


def _arguments(raw: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if isinstance(raw, str) and raw else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
