"""OpenInference attributes for chat messages and advertised tools (the flattened `llm.*_messages.*` keys).

Split from openinference.py to keep both short. The extraction rules are those of the official OpenInference
OpenAI instrumentation (what its golden spans hold): roles, string content or typed content parts (`text`
and `image_url` only; audio/file parts record nothing), names, tool-call ids and function calls. Empty values
are left out. Hiding is applied while building, with the precedence of `TraceConfig.mask`, so nothing hidden
is ever flattened: callers skip whole message lists themselves (HIDE_INPUTS / HIDE_*_MESSAGES), and the text,
image and base64-length rules are applied here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from openinference.semconv.trace import (
    ImageAttributes,
    MessageAttributes,
    MessageContentAttributes,
    SpanAttributes,
    ToolAttributes,
    ToolCallAttributes,
)

REDACTED_VALUE = "__REDACTED__"  # openinference.instrumentation.REDACTED_VALUE; that package is not a dependency

_ROLE = MessageAttributes.MESSAGE_ROLE
_CONTENT = MessageAttributes.MESSAGE_CONTENT
_CONTENTS = MessageAttributes.MESSAGE_CONTENTS
_NAME = MessageAttributes.MESSAGE_NAME
_TOOL_CALL_ID = MessageAttributes.MESSAGE_TOOL_CALL_ID
_TOOL_CALLS = MessageAttributes.MESSAGE_TOOL_CALLS
_FUNCTION_CALL_NAME = MessageAttributes.MESSAGE_FUNCTION_CALL_NAME
_FUNCTION_CALL_ARGUMENTS = MessageAttributes.MESSAGE_FUNCTION_CALL_ARGUMENTS_JSON
_PART_TYPE = MessageContentAttributes.MESSAGE_CONTENT_TYPE
_PART_TEXT = MessageContentAttributes.MESSAGE_CONTENT_TEXT
_PART_IMAGE_URL = f"{MessageContentAttributes.MESSAGE_CONTENT_IMAGE}.{ImageAttributes.IMAGE_URL}"
_CALL_ID = ToolCallAttributes.TOOL_CALL_ID
_CALL_NAME = ToolCallAttributes.TOOL_CALL_FUNCTION_NAME
_CALL_ARGUMENTS = ToolCallAttributes.TOOL_CALL_FUNCTION_ARGUMENTS_JSON


def dumps(value: Any) -> str:
    """JSON text for an attribute: orjson (fast, compact); the stdlib only for what orjson refuses (big ints)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        import json

        return json.dumps(value, ensure_ascii=False, default=str)


def is_base64_image(url: str) -> bool:
    """The test `TraceConfig` uses to decide which image URLs the length limit applies to."""
    return url.startswith("data:image/") and "base64" in url


def image_url_of(part: dict[str, Any]) -> Any:
    image = part.get("image_url")
    return image.get("url") if isinstance(image, dict) else image


def message_attributes(
    attributes: dict[str, Any],
    prefix: str,
    messages: Iterable[tuple[int, Any]],
    *,
    hide_text: bool,
    hide_images: bool,
    image_max_length: int,
) -> None:
    """Flatten `(index, message)` pairs under `prefix` (`llm.input_messages` / `llm.output_messages`)."""
    for index, message in messages:
        if isinstance(message, dict):
            _message(attributes, f"{prefix}.{index}.", message, hide_text, hide_images, image_max_length)


def output_messages(response: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    """Each choice's message with the choice's `index` (a choice without one is skipped, as upstream does)."""
    choices = response.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict) and isinstance(index := choice.get("index"), int):
                yield index, choice.get("message")


def tool_schema_attributes(attributes: dict[str, Any], tools: Any) -> None:
    """`llm.tools.{i}.tool.json_schema`: each advertised tool as sent (OpenAI `{"type":"function",...}` form)."""
    if not isinstance(tools, list):
        return
    for index, tool in enumerate(tools):
        attributes[f"{SpanAttributes.LLM_TOOLS}.{index}.{ToolAttributes.TOOL_JSON_SCHEMA}"] = dumps(tool)


def _message(
    attributes: dict[str, Any],
    prefix: str,
    message: dict[str, Any],
    hide_text: bool,
    hide_images: bool,
    image_max_length: int,
) -> None:
    if role := message.get("role"):
        attributes[prefix + _ROLE] = role
    if tool_call_id := message.get("tool_call_id"):
        attributes[prefix + _TOOL_CALL_ID] = tool_call_id
    if content := message.get("content"):
        if isinstance(content, str):
            attributes[prefix + _CONTENT] = REDACTED_VALUE if hide_text else content
        elif isinstance(content, list):
            if all(isinstance(part, dict) for part in content):
                for index, part in enumerate(content):
                    _part(attributes, f"{prefix}{_CONTENTS}.{index}.", part, hide_text, hide_images, image_max_length)
            else:  # not the typed-parts form: recorded as JSON text, like the official instrumentation
                attributes[prefix + _CONTENT] = REDACTED_VALUE if hide_text else dumps(content)
    if name := message.get("name"):
        attributes[prefix + _NAME] = name
    if isinstance(function_call := message.get("function_call"), dict):  # deprecated functions API
        if function_name := function_call.get("name"):
            attributes[prefix + _FUNCTION_CALL_NAME] = function_name
        if function_arguments := function_call.get("arguments"):
            attributes[prefix + _FUNCTION_CALL_ARGUMENTS] = _as_text(function_arguments)
    if isinstance(tool_calls := message.get("tool_calls"), list):
        for index, call in enumerate(tool_calls):
            if isinstance(call, dict):
                _tool_call(attributes, f"{prefix}{_TOOL_CALLS}.{index}.", call)


def _part(
    attributes: dict[str, Any],
    prefix: str,
    part: dict[str, Any],
    hide_text: bool,
    hide_images: bool,
    image_max_length: int,
) -> None:
    kind = part.get("type")
    if kind == "text":
        attributes[prefix + _PART_TYPE] = "text"
        if text := part.get("text"):
            attributes[prefix + _PART_TEXT] = REDACTED_VALUE if hide_text else text
    elif kind == "image_url":
        attributes[prefix + _PART_TYPE] = "image"  # the type stays even when the image itself is hidden
        if not hide_images and (url := image_url_of(part)) and isinstance(url, str):
            too_long = len(url) > image_max_length and is_base64_image(url)
            attributes[prefix + _PART_IMAGE_URL] = REDACTED_VALUE if too_long else url


def _tool_call(attributes: dict[str, Any], prefix: str, call: dict[str, Any]) -> None:
    if (call_id := call.get("id")) is not None:
        attributes[prefix + _CALL_ID] = call_id
    if isinstance(function := call.get("function"), dict):
        if name := function.get("name"):
            attributes[prefix + _CALL_NAME] = name
        if arguments := function.get("arguments"):
            attributes[prefix + _CALL_ARGUMENTS] = _as_text(arguments)


def _as_text(arguments: Any) -> str:
    # The wire format says a JSON string; a few OpenAI-compatible servers send the object itself.
    return arguments if isinstance(arguments, str) else dumps(arguments)
