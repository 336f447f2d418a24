"""OpenInference span attributes for the gateway's LLM, EMBEDDING and TOOL spans: pure functions over dicts.

The LLM and EMBEDDING attributes are those the official OpenInference OpenAI instrumentation records for the same
exchange (tests/fixtures/openinference-golden holds its spans; tests/unit/test_openinference_attributes.py checks
every chat and embeddings one), computed from the OpenAI-shaped request body and the chat.completion / embeddings
response (for streams: what llm_bridge.assemble.StreamAssembler folded), plus `llm.provider`, which the recorded
instrumentation version did not set yet and the current one does.

Hiding follows `openinference.instrumentation.TraceConfig` (spec/configuration.md): the `Recording` flags have
the same names, environment variables, parsing and defaults, and are applied with the precedence of
`TraceConfig.mask`: `input.value`/`output.value` become "__REDACTED__" while their mime types are dropped; hidden
message lists and `llm.tools.*` are dropped; hidden message text and embedding texts/vectors become
"__REDACTED__" (a hidden vector is the string, not a list); hidden images are dropped but keep their part type;
base64 `data:image/` URLs longer than `base64_image_max_length` become "__REDACTED__". Like the official OpenAI
instrumentation, hidden or oversized images are also redacted inside `input.value`. Hidden parts are never
built, which is also the cheap way: nothing is flattened and then thrown away.

Cost: the request and the response are each serialised once (orjson); the invocation parameters and each tool
schema are small separate JSON values because the conventions want them as separate attributes.
"""

from __future__ import annotations

import base64
import logging
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from openinference.semconv.trace import (
    EmbeddingAttributes,
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)

from .openinference_messages import (
    REDACTED_VALUE,
    dumps,
    image_url_of,
    is_base64_image,
    message_attributes,
    output_messages,
    tool_schema_attributes,
)

__all__ = ["REDACTED_VALUE", "Recording", "embedding_attributes", "llm_attributes", "record_value", "tool_attributes"]

log = logging.getLogger(__name__)

_JSON = OpenInferenceMimeTypeValues.JSON.value
_TEXT = OpenInferenceMimeTypeValues.TEXT.value
_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
_INPUT_MESSAGES = SpanAttributes.LLM_INPUT_MESSAGES
_OUTPUT_MESSAGES = SpanAttributes.LLM_OUTPUT_MESSAGES
_EMBEDDINGS = SpanAttributes.EMBEDDING_EMBEDDINGS
_NOT_INVOCATION_PARAMETERS = frozenset({"messages", "functions", "tools"})  # recorded as messages / llm.tools


@dataclass(frozen=True, slots=True)
class Recording:
    """What may be recorded: the `TraceConfig` settings (OPENINFERENCE_* variables), same names and defaults.

    `hide_embedding_vectors` stands for both TraceConfig's current `hide_embeddings_vectors`
    (OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS) and its deprecated `hide_embedding_vectors`; either one hides.
    `hide_prompts` / `hide_choices` concern the legacy completions API (`llm.prompts.*` / `llm.choices.*`), which
    these builders do not emit; they are kept so a policy naming them is understood. TraceConfig's
    `enable_genai_semconv` and `blob_uploader` are not recording settings and are not here.
    """

    hide_inputs: bool = False
    hide_outputs: bool = False
    hide_input_messages: bool = False
    hide_output_messages: bool = False
    hide_input_images: bool = False
    hide_input_text: bool = False
    hide_output_text: bool = False
    hide_embedding_vectors: bool = False
    hide_embeddings_text: bool = False
    hide_llm_invocation_parameters: bool = False
    hide_llm_tools: bool = False
    hide_prompts: bool = False
    hide_choices: bool = False
    base64_image_max_length: int = 32_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Recording:
        """Read the OPENINFERENCE_* variables the way TraceConfig does.

        Booleans accept only "true"/"false" in any case; anything else (even "1") logs a warning and keeps the
        default, as TraceConfig does. The length must parse as an int, else the default is kept.
        """
        values: dict[str, Any] = {}
        for field in fields(cls):
            default = field.default
            if field.name == "base64_image_max_length":
                raw = environ.get("OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH")
                values[field.name] = default if raw is None else _parse_int(raw, default)
            else:
                names = _ENV_NAMES.get(field.name, ("OPENINFERENCE_" + field.name.upper(),))
                values[field.name] = any(_parse_bool(environ.get(name), name, default) for name in names)
        return cls(**values)

    def overridden(self, settings: Mapping[str, Any]) -> Recording:
        """This recording with per-tenant overrides, e.g. `{"hide_inputs": True}`; None means "not overridden".

        Unknown keys and wrongly typed values raise (ValueError / TypeError): a policy typo must not silently
        record what it meant to hide.
        """
        changes: dict[str, Any] = {}
        for key, value in settings.items():
            name = _ALIASES.get(key, key)
            if name not in _FIELD_NAMES:
                raise ValueError(f"unknown OpenInference recording setting {key!r}")
            if value is None:
                continue
            if name == "base64_image_max_length":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TypeError(f"{key} must be an int, not {type(value).__name__}")
            elif not isinstance(value, bool):
                raise TypeError(f"{key} must be a bool, not {type(value).__name__}")
            changes[name] = value
        return replace(self, **changes) if changes else self


# Fields whose variable is not simply OPENINFERENCE_<NAME>; the deprecated spelling still counts.
_ENV_NAMES = {
    "hide_embedding_vectors": ("OPENINFERENCE_HIDE_EMBEDDINGS_VECTORS", "OPENINFERENCE_HIDE_EMBEDDING_VECTORS"),
}
_ALIASES = {"hide_embeddings_vectors": "hide_embedding_vectors"}  # TraceConfig's current field name
_FIELD_NAMES = frozenset(field.name for field in fields(Recording))


def _parse_bool(raw: str | None, name: str, default: bool) -> bool:
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    log.warning("Could not parse %r to bool for the environment variable %r; using the default %s", raw, name, default)
    return default


def _parse_int(raw: str, default: int) -> int:
    try:
        return int(raw)
    except ValueError:
        log.warning("Could not parse %r to int for OPENINFERENCE_BASE64_IMAGE_MAX_LENGTH; using %d", raw, default)
        return default


def llm_attributes(
    request: dict[str, Any],
    response: dict[str, Any] | None,
    *,
    system: str,
    provider: str,
    recording: Recording,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """Attributes of an OpenInference LLM span for one chat completion.

    `request` is the body the client sent, `response` the chat.completion (or the assembled stream), None when
    the call failed before one existed. The failure itself is not an attribute: the official spans keep it in
    the span status and an `exception` event, which the caller records from `error`. With `error` set, a
    `response` that is not a completion (an error body) is ignored; a partial stream's assembly is recorded.
    """
    rec = recording
    attributes = _common(OpenInferenceSpanKindValues.LLM.value, system, provider)
    _input(attributes, _without_hidden_images(request, rec), rec)
    if not rec.hide_llm_invocation_parameters:
        parameters = {k: v for k, v in request.items() if k not in _NOT_INVOCATION_PARAMETERS}
        attributes[SpanAttributes.LLM_INVOCATION_PARAMETERS] = dumps(parameters)
    if not (rec.hide_inputs or rec.hide_llm_tools):
        tool_schema_attributes(attributes, request.get("tools"))
    if not (rec.hide_inputs or rec.hide_input_messages) and isinstance(messages := request.get("messages"), list):
        message_attributes(
            attributes,
            _INPUT_MESSAGES,
            enumerate(messages),
            hide_text=rec.hide_input_text,
            hide_images=rec.hide_input_images,
            image_max_length=rec.base64_image_max_length,
        )
    if response is None or (error is not None and "choices" not in response):
        return attributes
    _output(attributes, response, rec)
    if model := response.get("model"):
        attributes[SpanAttributes.LLM_MODEL_NAME] = model
    if isinstance(usage := response.get("usage"), dict):
        _token_counts(attributes, usage)
    if not (rec.hide_outputs or rec.hide_output_messages):
        message_attributes(
            attributes,
            _OUTPUT_MESSAGES,
            output_messages(response),
            hide_text=rec.hide_output_text,
            hide_images=False,  # there is no hide_output_images; the base64 limit still applies
            image_max_length=rec.base64_image_max_length,
        )
    return attributes


def embedding_attributes(
    request: dict[str, Any],
    response: dict[str, Any] | None,
    *,
    system: str,
    provider: str,
    recording: Recording,
) -> dict[str, Any]:
    """Attributes of an OpenInference EMBEDDING span for one `/v1/embeddings` call (response None on failure).

    Texts come from the request's `input` (strings only: token-id inputs have no text); vectors from the
    response, base64 ones decoded to floats as the SDK does. `embedding.invocation_parameters` is not affected by
    hide_llm_invocation_parameters, exactly as TraceConfig.mask only drops `llm.invocation_parameters`.
    """
    rec = recording
    attributes = _common(OpenInferenceSpanKindValues.EMBEDDING.value, system, provider)
    _input(attributes, request, rec)
    parameters = {k: v for k, v in request.items() if k != "input"}
    attributes[SpanAttributes.EMBEDDING_INVOCATION_PARAMETERS] = dumps(parameters)
    text_key = EmbeddingAttributes.EMBEDDING_TEXT
    for index, text in enumerate(_embedding_texts(request.get("input"))):
        attributes[f"{_EMBEDDINGS}.{index}.{text_key}"] = REDACTED_VALUE if rec.hide_embeddings_text else text
    if response is None:
        return attributes
    _output(attributes, response, rec)
    if isinstance(usage := response.get("usage"), dict):
        _token_counts(attributes, usage)
    if model := response.get("model"):
        attributes[SpanAttributes.EMBEDDING_MODEL_NAME] = model
    if isinstance(data := response.get("data"), list):
        vector_key = EmbeddingAttributes.EMBEDDING_VECTOR
        for item in data:
            if not isinstance(item, dict) or (index := item.get("index")) is None:
                continue
            if rec.hide_embedding_vectors:
                if item.get("embedding"):
                    attributes[f"{_EMBEDDINGS}.{index}.{vector_key}"] = REDACTED_VALUE
            elif vector := _vector(item.get("embedding")):
                attributes[f"{_EMBEDDINGS}.{index}.{vector_key}"] = vector
    return attributes


def tool_attributes(
    *,
    name: str,
    description: str | None,
    parameters: dict[str, Any] | str | None,
    arguments: Any,
    result: Any,
    recording: Recording,
) -> dict[str, Any]:
    """Attributes of an OpenInference TOOL span (an MCP `tools/call`): the tool, its arguments and its result.

    `parameters` is the tool's input schema (`tool.parameters`, JSON). Arguments and result are typed like
    `get_input_attributes` does: str/int/float/bool as text/plain, objects and lists as application/json;
    None records nothing.
    """
    attributes: dict[str, Any] = {_KIND: OpenInferenceSpanKindValues.TOOL.value, SpanAttributes.TOOL_NAME: name}
    if description is not None:
        attributes[SpanAttributes.TOOL_DESCRIPTION] = description
    if parameters is not None:
        attributes[SpanAttributes.TOOL_PARAMETERS] = parameters if isinstance(parameters, str) else dumps(parameters)
    if arguments is not None:
        record_value(
            attributes, SpanAttributes.INPUT_VALUE, SpanAttributes.INPUT_MIME_TYPE, arguments, recording.hide_inputs
        )
    if result is not None:
        record_value(
            attributes, SpanAttributes.OUTPUT_VALUE, SpanAttributes.OUTPUT_MIME_TYPE, result, recording.hide_outputs
        )
    return attributes


def _common(kind: str, system: str, provider: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {_KIND: kind}
    if system:
        attributes[SpanAttributes.LLM_SYSTEM] = system.lower()  # free-form values are lower-cased, as upstream
    if provider:
        attributes[SpanAttributes.LLM_PROVIDER] = provider.lower()
    return attributes


def _input(attributes: dict[str, Any], request: dict[str, Any], rec: Recording) -> None:
    if rec.hide_inputs:
        attributes[SpanAttributes.INPUT_VALUE] = REDACTED_VALUE  # and no mime type, as TraceConfig.mask does
    else:
        attributes[SpanAttributes.INPUT_VALUE] = dumps(request)
        attributes[SpanAttributes.INPUT_MIME_TYPE] = _JSON


def _output(attributes: dict[str, Any], response: dict[str, Any], rec: Recording) -> None:
    if rec.hide_outputs:
        attributes[SpanAttributes.OUTPUT_VALUE] = REDACTED_VALUE
    else:
        attributes[SpanAttributes.OUTPUT_VALUE] = dumps(response)
        attributes[SpanAttributes.OUTPUT_MIME_TYPE] = _JSON


def record_value(attributes: dict[str, Any], value_key: str, mime_key: str, value: Any, hide: bool) -> None:
    """Typed as `get_input_attributes` does; hidden means REDACTED and no mime type (TraceConfig.mask)."""
    if hide:
        attributes[value_key] = REDACTED_VALUE
    elif isinstance(value, str | bool | int | float):
        attributes[value_key] = str(value)
        attributes[mime_key] = _TEXT
    else:
        attributes[value_key] = dumps(value)
        attributes[mime_key] = _JSON


def _token_counts(attributes: dict[str, Any], usage: dict[str, Any]) -> None:
    """Token counts as the recorded instrumentation sets them: every count present, zeros included."""
    for key, attribute in (
        ("total_tokens", SpanAttributes.LLM_TOKEN_COUNT_TOTAL),
        ("prompt_tokens", SpanAttributes.LLM_TOKEN_COUNT_PROMPT),
        ("completion_tokens", SpanAttributes.LLM_TOKEN_COUNT_COMPLETION),
    ):
        if (count := usage.get(key)) is not None:
            attributes[attribute] = count
    if isinstance(details := usage.get("prompt_tokens_details"), dict):
        for key, attribute in (
            ("cached_tokens", SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ),
            ("audio_tokens", SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_AUDIO),
            ("cache_creation_tokens", SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE),  # canonical name
            ("cache_creation_input_tokens", SpanAttributes.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE),
        ):
            if (count := details.get(key)) is not None:
                attributes[attribute] = count
    if isinstance(details := usage.get("completion_tokens_details"), dict):
        for key, attribute in (
            ("reasoning_tokens", SpanAttributes.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING),
            ("audio_tokens", SpanAttributes.LLM_TOKEN_COUNT_COMPLETION_DETAILS_AUDIO),
        ):
            if (count := details.get(key)) is not None:
                attributes[attribute] = count


def _without_hidden_images(request: dict[str, Any], rec: Recording) -> dict[str, Any]:
    """The request with hidden or oversized image URLs replaced by REDACTED_VALUE, copied only along the way
    to them (the official OpenAI instrumentation does the same for `input.value`)."""
    if rec.hide_inputs or not isinstance(messages := request.get("messages"), list):
        return request  # input.value is redacted as a whole anyway
    new_messages: list[Any] | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(content := message.get("content"), list):
            continue
        new_content: list[Any] | None = None
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            url = image_url_of(part)
            if not isinstance(url, str) or not (
                rec.hide_input_images or (len(url) > rec.base64_image_max_length and is_base64_image(url))
            ):
                continue
            image = part["image_url"]
            if new_content is None:
                new_content = list(content)
            hidden = {**image, "url": REDACTED_VALUE} if isinstance(image, dict) else REDACTED_VALUE
            new_content[j] = {**part, "image_url": hidden}
        if new_content is not None:
            if new_messages is None:
                new_messages = list(messages)
            new_messages[i] = {**message, "content": new_content}
    return request if new_messages is None else {**request, "messages": new_messages}


def _embedding_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    return []  # token ids (or nothing): no text to record


def _vector(value: Any) -> list[float] | None:
    if isinstance(value, list) and value:
        # OTel drops arrays that mix int and float; a JSON "0" parses as int.
        return value if all(type(x) is float for x in value) else [float(x) for x in value]
    if isinstance(value, str) and value:
        try:
            floats = array("f", base64.b64decode(value, validate=True))  # little-endian float32, as the SDK reads it
        except ValueError:
            return None
        if sys.byteorder == "big":
            floats.byteswap()
        return floats.tolist()
    return None
