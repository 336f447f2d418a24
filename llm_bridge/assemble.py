"""Fold a stream of `chat.completion.chunk` dicts into one chat.completion-shaped dict.

Used for telemetry (the OpenInference LLM span records what a stream amounted to) and anywhere else a whole
answer is needed after the fact. It follows the folding rules of the official OpenInference OpenAI
instrumentation, whose result is what its golden spans show as `output.value`:

- each choice's `delta` becomes its `message`; choices and tool calls are matched by `index`;
- `content`, `reasoning_content`, `refusal` and tool-call/function-call `arguments` are concatenated;
  an empty concatenation is left out (a stream that only said `content: ""` has no content);
- any other scalar is replaced by the latest non-null value (`id`, `model`, `finish_reason`, `obfuscation`...),
  `null`s never overwrite, nested objects (`usage`, `logprobs`) are merged key by key, lists are extended;
- keys keep the order they were first seen in; `object` becomes `chat.completion` (what the whole is).

Where this differs from the official accumulator, on purpose: `reasoning_content` and `refusal` are
concatenated (it keeps only their last fragment), a tool call's `id` is replaced rather than concatenated
(some OpenAI-compatible servers repeat it on every chunk), a tool call or choice without `index` still counts
(a new tool call; choice 0), `arguments` stays present when it ends up empty, and `choices` is always present.

It runs per chunk on the hot path: no deep copies, only dict/list operations on the values that changed.
The chunks are never mutated; nested values first seen in a chunk are copied once, shallowly.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_TEXT_KEYS = frozenset({"content", "reasoning_content", "refusal"})


class StreamAssembler:
    """Feed every chunk to `add`, then take `result()` once the stream has ended."""

    __slots__ = ("_choices", "_top")

    def __init__(self) -> None:
        self._top: Json = {}
        self._choices: dict[int, _Choice] = {}

    def add(self, chunk: Json) -> None:
        for key, value in chunk.items():
            if value is None:
                continue
            if key == "choices":
                self._top.setdefault("choices", None)  # placeholder that keeps its position
                for choice in value:
                    self._add_choice(choice)
            else:
                _merge_value(self._top, key, value)

    def _add_choice(self, choice: Json) -> None:
        index = choice.get("index")
        if index is None:
            index = 0
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice(index)
        for key, value in choice.items():
            if value is None or key == "index":
                continue
            if key == "delta" or key == "message":
                state.add_delta(value)
            else:
                _merge_value(state.extra, key, value)

    def result(self) -> Json:
        """The assembled dict. Nested values are shared with the assembler: call it after the last chunk."""
        choices = [state.result() for _, state in sorted(self._choices.items())]
        out: Json = {}
        for key, value in self._top.items():
            out[key] = choices if key == "choices" else value
        if "choices" not in out:
            out["choices"] = choices
        if out.get("object") == "chat.completion.chunk":
            out["object"] = "chat.completion"  # the whole answer, as a non-streamed request would have had it
        return out


class _Function:
    """A function call being streamed: `arguments` fragments concatenate, other keys follow `_merge_value`."""

    __slots__ = ("arguments", "fields")

    def __init__(self) -> None:
        self.fields: Json = {}
        self.arguments: list[str] = []

    def add(self, delta: Json) -> None:
        for key, value in delta.items():
            if value is None:
                continue
            if key == "arguments" and isinstance(value, str):
                self.fields.setdefault("arguments", None)
                if value:
                    self.arguments.append(value)
            else:
                _merge_value(self.fields, key, value)

    def result(self) -> Json:
        out: Json = {}
        for key, value in self.fields.items():
            out[key] = "".join(self.arguments) if key == "arguments" else value
        return out


class _ToolCall:
    __slots__ = ("fields", "function")

    def __init__(self) -> None:
        self.fields: Json = {}
        self.function: _Function | None = None

    def add(self, delta: Json) -> None:
        for key, value in delta.items():
            if value is None:
                continue
            if key == "function" and isinstance(value, dict):
                if self.function is None:
                    self.function = _Function()
                    self.fields["function"] = None
                self.function.add(value)
            elif key == "id" and not value:
                continue  # an empty id in a later fragment must not erase the real one
            else:
                _merge_value(self.fields, key, value)

    def result(self) -> Json:
        out: Json = {}
        for key, value in self.fields.items():
            out[key] = self.function.result() if key == "function" and self.function is not None else value
        return out


class _Choice:
    __slots__ = ("extra", "function_call", "index", "message", "texts", "tool_calls")

    def __init__(self, index: int) -> None:
        self.index = index
        self.message: Json = {}  # first-seen order; text, tool_calls and function_call keys hold placeholders
        self.texts: dict[str, list[str]] = {}
        self.tool_calls: dict[int, _ToolCall] = {}
        self.function_call: _Function | None = None
        self.extra: Json = {}  # finish_reason, logprobs, ...

    def add_delta(self, delta: Json) -> None:
        for key, value in delta.items():
            if value is None:
                continue
            if key in _TEXT_KEYS and isinstance(value, str):
                fragments = self.texts.get(key)
                if fragments is None:
                    fragments = self.texts[key] = []
                    self.message[key] = None
                if value:
                    fragments.append(value)
            elif key == "tool_calls" and isinstance(value, list):
                self.message.setdefault("tool_calls", None)
                for call in value:
                    self._add_tool_call(call)
            elif key == "function_call" and isinstance(value, dict):
                if self.function_call is None:
                    self.function_call = _Function()
                    self.message["function_call"] = None
                self.function_call.add(value)
            else:
                _merge_value(self.message, key, value)

    def _add_tool_call(self, call: Json) -> None:
        index = call.get("index")
        if index is None:
            index = len(self.tool_calls)  # no index: a whole call, not a fragment of an earlier one
        state = self.tool_calls.get(index)
        if state is None:
            state = self.tool_calls[index] = _ToolCall()
        state.add(call)

    def result(self) -> Json:
        message: Json = {}
        for key, value in self.message.items():
            if key in self.texts:
                if text := "".join(self.texts[key]):
                    message[key] = text
            elif key == "tool_calls":
                message[key] = [call.result() for _, call in sorted(self.tool_calls.items())]
            elif key == "function_call" and self.function_call is not None:
                message[key] = self.function_call.result()
            else:
                message[key] = value
        return {"index": self.index, "message": message, **self.extra}


def _merge_value(target: Json, key: str, value: Any) -> None:
    """Merge one non-null value into `target[key]`: objects merge, lists extend, scalars replace."""
    if isinstance(value, dict):
        current = target.get(key)
        if isinstance(current, dict):
            for k, v in value.items():
                if v is not None:
                    _merge_value(current, k, v)
        else:
            target[key] = _fresh(value)
    elif isinstance(value, list):
        current = target.get(key)
        if isinstance(current, list):
            current.extend(value)
        else:
            target[key] = list(value)
    else:
        target[key] = value


def _fresh(value: Json) -> Json:
    """Our own copy of a newly seen object (nulls dropped), so later merges never touch the chunk."""
    out: Json = {}
    for key, item in value.items():
        if item is None:
            continue
        if isinstance(item, dict):
            item = _fresh(item)
        elif isinstance(item, list):
            item = list(item)
        out[key] = item
    return out
