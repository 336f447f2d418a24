"""Anthropic Messages streams <-> chat.completion.chunk streams.

StreamToChat reads a backend's SSE events (already parsed into event name and JSON data) and yields chunks;
StreamFromChat does the reverse for the /v1/messages front door. Thinking travels as `reasoning_content`, its
signature as `reasoning_signature` and redacted thinking as `reasoning_redacted` (a list), as in anthropic.py.
The mappings both directions share (stop reasons, usage, tool arguments) live here, and anthropic.py imports them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

Event = tuple[str, dict[str, Any]]

# stop_reason -> finish_reason and back (the way back takes the main Anthropic name of each)
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length"}
_FINISH |= {"model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter"}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_STOP["function_call"] = "tool_use"


def finish_reason_of(stop_reason: str | None) -> str:
    return _FINISH.get(stop_reason or "", "stop")


def stop_reason_of(finish_reason: str | None) -> str:
    return _STOP.get(finish_reason or "", "end_turn")


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage -> canonical; Anthropic's input_tokens excludes the cached part, OpenAI's prompt_tokens not."""
    read, created = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    prompt = (usage.get("input_tokens") or 0) + (read or 0) + (created or 0)
    completion = usage.get("output_tokens") or 0
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    out["total_tokens"] = prompt + completion
    if read is not None or created is not None:
        out["prompt_tokens_details"] = {"cached_tokens": read or 0, "cache_creation_tokens": created or 0}
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    if thinking is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return out


def anthropic_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """Canonical usage -> Anthropic; input_tokens is the part of the prompt no cache read or wrote."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    read = details.get("cached_tokens") or 0
    created = details.get("cache_creation_tokens") or details.get("cache_write_tokens") or 0  # OpenRouter's name
    out: dict[str, Any] = {
        "input_tokens": max((usage.get("prompt_tokens") or 0) - read - created, 0),
        "output_tokens": usage.get("completion_tokens") or 0,
    }
    if details:
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = created
    return out


def tool_input(arguments: Any) -> dict[str, Any]:
    """OpenAI arguments (a JSON string) -> Anthropic input, which must be an object: "" and garbage give {}."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def tool_arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


class StreamError(Exception):
    """An `error` event inside an Anthropic stream (e.g. overloaded_error after the 200 status was sent)."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message


class StreamToChat:
    """Anthropic SSE events -> chat.completion.chunk dicts."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self._id = ""
        self._created = int(time.time())
        self._raw_usage: dict[str, Any] = {}
        # block index -> [tool call index, whether any argument text went out]
        self._tools: dict[int, list[Any]] = {}
        self._usage_sent = False

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event or data.get("type") or ""
        if kind == "content_block_delta":
            return self._delta(data.get("index", 0), data.get("delta") or {})
        if kind == "content_block_start":
            return self._start(data.get("index", 0), data.get("content_block") or {})
        if kind == "content_block_stop":
            return self._stop(data.get("index", 0))
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = message.get("id") or self._id
            self.model = message.get("model") or self.model
            self._raw_usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            # counts on message_delta are cumulative: they replace the message_start ones they repeat
            self._raw_usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            self.usage = chat_usage(self._raw_usage)
            return [self._chunk({}, finish_reason_of((data.get("delta") or {}).get("stop_reason")))]
        if kind == "message_stop":
            if self._raw_usage:
                self.usage = chat_usage(self._raw_usage)
            if not (self.include_usage and self.usage) or self._usage_sent:
                return []
            self._usage_sent = True
            return [{**self._chunk({}), "choices": [], "usage": self.usage}]
        if kind == "error":
            error = data.get("error") or {}
            raise StreamError(error.get("type") or "api_error", error.get("message") or "")
        return []  # ping and events added later

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model or "",
            "choices": [choice],
        }

    def _start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "tool_use":
            slot = len(self._tools)
            arguments = tool_arguments(block["input"]) if block.get("input") else ""
            self._tools[index] = [slot, bool(arguments)]
            function = {"name": block.get("name") or "", "arguments": arguments}
            call = {"index": slot, "id": block.get("id") or "", "type": "function", "function": function}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        if kind == "redacted_thinking":
            return [self._chunk({"reasoning_redacted": [block.get("data") or ""]})]
        return []  # server tool blocks have no chat equivalent

    def _delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and delta.get("signature"):
            return [self._chunk({"reasoning_signature": delta["signature"]})]
        tool = self._tools.get(index)
        if kind == "input_json_delta" and tool and delta.get("partial_json"):
            tool[1] = True
            return [self._tool_arguments(tool[0], delta["partial_json"])]
        return []

    def _stop(self, index: int) -> list[dict[str, Any]]:
        tool = self._tools.get(index)
        if tool and not tool[1]:
            tool[1] = True  # a call without input: "{}" so that clients can json.loads the arguments
            return [self._tool_arguments(tool[0], "{}")]
        return []

    def _tool_arguments(self, slot: int, fragment: str) -> dict[str, Any]:
        return self._chunk({"tool_calls": [{"index": slot, "function": {"arguments": fragment}}]})


class StreamFromChat:
    """chat.completion.chunk dicts -> Anthropic SSE events (event name, data)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._finished = False
        self._index = -1  # the last block opened; Anthropic block indexes are positions in `content`
        self._open: str | None = None  # the kind of the block still open
        self._tool_blocks: dict[int, int] = {}  # tool call index -> block index
        self._stop: str | None = None
        self._usage: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        events = [] if self._started else self._message_start(chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1 has no Anthropic equivalent
            events += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._stop = stop_reason_of(choice["finish_reason"])
        return events

    def finish(self) -> list[Event]:
        """Closes the open block, then message_delta (stop_reason, usage) and message_stop; usage may come last."""
        if self._finished:
            return []
        self._finished = True
        events = ([] if self._started else self._message_start({})) + self._close()
        stop = self._stop or ("tool_use" if self._tool_blocks else "end_turn")
        usage = anthropic_usage(self._usage) if self._usage else {"output_tokens": 0}
        delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage}
        return [*events, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]

    def _message_start(self, chunk: dict[str, Any]) -> list[Event]:
        self._started = True
        ident = chunk.get("id") or uuid.uuid4().hex
        message = {
            "id": ident if ident.startswith("msg_") else f"msg_{ident}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(chunk["usage"]) if chunk.get("usage") else {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _delta(self, delta: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if delta.get("reasoning_content"):
            events += self._ensure("thinking")
            events.append(self._block_delta({"type": "thinking_delta", "thinking": delta["reasoning_content"]}))
        if delta.get("reasoning_signature"):
            events += self._ensure("thinking")
            events.append(self._block_delta({"type": "signature_delta", "signature": delta["reasoning_signature"]}))
        for data in delta.get("reasoning_redacted") or []:
            events += self._open_block({"type": "redacted_thinking", "data": data}) + self._close()
        text = delta.get("content") or delta.get("refusal")  # a refusal is text to an Anthropic client
        if text:
            events += self._ensure("text")
            events.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or []:
            events += self._tool_call(call)
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        slot, fn = call.get("index", 0), call.get("function") or {}
        if slot not in self._tool_blocks:
            ident = call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"
            events += self._open_block({"type": "tool_use", "id": ident, "name": fn.get("name") or "", "input": {}})
            self._tool_blocks[slot] = self._index
        if fn.get("arguments"):
            # a late fragment of an earlier call keeps its own block index (accumulators go by index)
            delta = {"type": "input_json_delta", "partial_json": fn["arguments"]}
            events.append(self._block_delta(delta, self._tool_blocks[slot]))
        return events

    def _ensure(self, kind: str) -> list[Event]:
        if self._open == kind:
            return []
        block = (
            {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
        )
        return self._open_block(block)

    def _open_block(self, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self._index += 1
        self._open = block["type"]
        return [
            *events,
            ("content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block}),
        ]

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _block_delta(self, delta: dict[str, Any], index: int | None = None) -> Event:
        data = {"type": "content_block_delta", "index": self._index if index is None else index, "delta": delta}
        return ("content_block_delta", data)
