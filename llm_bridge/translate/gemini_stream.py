"""Reading Gemini answers: `streamGenerateContent?alt=sse` events -> chat.completion.chunk objects, and the
part/usage/finish-reason helpers that gemini_response.chat_response shares with the stream.

Each SSE event is a whole GenerateContentResponse whose parts are complete in themselves: text parts carry the
next piece of text, a functionCall part carries a whole call (never split across events). So a text part
becomes a content delta and a call becomes one tool_call delta with index, id, name and all its arguments.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

Json = dict[str, Any]

_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
}


class StreamToChat:
    """One stream's state: the choices already started, tool-call indexes so far, and the last usage seen."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.usage: Json | None = None
        self._id: str | None = None
        self._created = int(time.time())
        self._ids = CallIds()
        self._started: set[int] = set()  # choices whose role went out
        self._calls: dict[int, int] = {}  # choice -> tool calls so far (the next call's index)

    def feed(self, data: Json) -> list[Json]:
        """One SSE `data:` object of streamGenerateContent?alt=sse -> chat.completion.chunk dicts. Gemini repeats
        usageMetadata on chunks: keep the last; the `{"choices": [], "usage": ...}` chunk comes from finish()."""
        if self._id is None:
            self._id = data.get("responseId") or made_up_id()
        if data.get("modelVersion"):
            self.model = data["modelVersion"]
        if "usageMetadata" in data:
            self.usage = usage_of(data["usageMetadata"])
        candidates = data.get("candidates") or []
        if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
            return [self._chunk(0, {"content": ""}, "content_filter")]
        chunks: list[Json] = []
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            for part in (candidate.get("content") or {}).get("parts") or []:
                delta = self._delta(index, part)
                if delta:
                    chunks.append(self._chunk(index, delta))
            if candidate.get("finishReason"):
                reason = finish_reason(candidate["finishReason"], self._calls.get(index, 0) > 0)
                chunks.append(self._chunk(index, {}, reason))
        return chunks

    def finish(self) -> list[Json]:
        """At the end of the stream: the usage chunk, when the client asked for it and Gemini sent usage."""
        if not self.include_usage or self.usage is None:
            return []
        return [{**self._envelope(), "choices": [], "usage": self.usage}]

    def _delta(self, index: int, part: Json) -> Json:
        delta: Json = {}
        if "functionCall" in part:
            call_index = self._calls.get(index, 0)
            self._calls[index] = call_index + 1
            return {"tool_calls": [{"index": call_index, **tool_call(part, self._ids.next(part))}]}
        if isinstance(part.get("text"), str) and part["text"]:
            delta["reasoning_content" if part.get("thought") else "content"] = part["text"]
        if part.get("thoughtSignature"):  # often on a last, empty text part
            delta["extra_content"] = google_extra(part["thoughtSignature"])
        return delta

    def _chunk(self, index: int, delta: Json, finish: str | None = None) -> Json:
        if index not in self._started:  # OpenAI streams name the role in each choice's first delta
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        return {**self._envelope(), "choices": [choice]}

    def _envelope(self) -> Json:
        return {
            "id": self._id or made_up_id(),
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
        }


class CallIds:
    """Gemini often sends function calls without ids; OpenAI clients need one to answer: make up call_<n>."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = 0

    def next(self, part: Json) -> str:
        given = (part.get("functionCall") or {}).get("id")
        if given:
            return str(given)
        call_id = f"call_{self._count}"
        self._count += 1
        return call_id


def tool_call(part: Json, call_id: str) -> Json:
    """A functionCall part -> an OpenAI tool call (its thought signature kept for the way back)."""
    function = part.get("functionCall") or {}
    arguments = orjson.dumps(function.get("args") or {}).decode()
    call: Json = {
        "id": call_id,
        "type": "function",
        "function": {"name": function.get("name", ""), "arguments": arguments},
    }
    if part.get("thoughtSignature"):
        call["extra_content"] = google_extra(part["thoughtSignature"])
    return call


def google_extra(signature: str) -> Json:
    return {"google": {"thought_signature": signature}}


def finish_reason(reason: str | None, has_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    # STOP, and the ones OpenAI has no word for (OTHER, MALFORMED_FUNCTION_CALL, ...)
    return "tool_calls" if has_calls else "stop"


def usage_of(metadata: Any) -> Json | None:
    """usageMetadata -> canonical usage. Thoughts count as completion tokens (they are billed as output), and
    tool-use prompt tokens as prompt tokens, so that prompt + completion = Gemini's total."""
    if not isinstance(metadata, dict):
        return None
    prompt = int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    usage: Json = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(metadata.get("totalTokenCount") or prompt + completion),
    }
    if "cachedContentTokenCount" in metadata:
        usage["prompt_tokens_details"] = {"cached_tokens": int(metadata["cachedContentTokenCount"] or 0)}
    if "thoughtsTokenCount" in metadata:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def made_up_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex
