"""MCP server spans: one per request the gateway serves, carrying both the OTel MCP conventions
(docs/gen-ai/mcp.md: `mcp.*`, `jsonrpc.request.id`, `gen_ai.tool.name`, `error.type`) and OpenInference
(`openinference.span.kind`, `tool.*`, `input.*`/`output.*`, `session.id`, `user.id`), so that Phoenix and a
plain OTel backend both read it without synthesising anything.

OpenInference kinds: TOOL for `tools/call` (the spec's "call to an external tool"), RETRIEVER for
`resources/read` (the contents are documents fetched by URI; Phoenix shows `retrieval.documents`), CHAIN for
every other method (the spec's "starting point or glue": listing, initialize, prompts/get, which renders a
template but calls no model).

The attribute builders here are pure functions over the request and result; the live spans that apply them
are in `mcp_span.py` (SDK-backed, and the no-op) and `lean_span.py` (the serving path's).
"""

from __future__ import annotations

from typing import Any

from openinference.semconv.trace import (
    DocumentAttributes,
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROMPT_NAME,
    GEN_AI_TOOL_NAME,
    GenAiOperationNameValues,
)
from opentelemetry.semconv._incubating.attributes.jsonrpc_attributes import JSONRPC_REQUEST_ID
from opentelemetry.semconv._incubating.attributes.mcp_attributes import (
    MCP_METHOD_NAME,
    MCP_PROTOCOL_VERSION,
    MCP_RESOURCE_URI,
    MCP_SESSION_ID,
)
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_RESPONSE_STATUS_CODE
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.network_attributes import (
    NETWORK_TRANSPORT,
    NetworkTransportValues,
)

from .openinference import Recording, record_value, tool_attributes
from .openinference_messages import REDACTED_VALUE, dumps

# Gateway attributes: what no convention names. Keep these names stable, dashboards filter on them.
TENANT = "mcp_gateway.tenant"
UPSTREAM = "mcp_gateway.upstream"  # the upstream MCP server that served the request
BACKEND = "mcp_gateway.backend"  # the LLM backend that served the request
ATTEMPTS = "mcp_gateway.llm.attempts"  # "backend:outcome" per try, when the router failed over
# What a translated LLM exchange sent the backend and got back, beside what the client sent and got (/v1/messages).
BACKEND_REQUEST = "mcp_gateway.llm.backend_request"
BACKEND_RESPONSE = "mcp_gateway.llm.backend_response"

TOOL_ERROR = "tool_error"  # error.type of a CallToolResult with isError (mcp.md)

_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
_INPUT = SpanAttributes.INPUT_VALUE
_INPUT_MIME = SpanAttributes.INPUT_MIME_TYPE
_RETRIEVER = OpenInferenceSpanKindValues.RETRIEVER.value
_CHAIN = OpenInferenceSpanKindValues.CHAIN.value
_JSON = OpenInferenceMimeTypeValues.JSON.value
_TEXT = OpenInferenceMimeTypeValues.TEXT.value
_EXECUTE_TOOL = GenAiOperationNameValues.EXECUTE_TOOL.value
_DOCUMENTS = SpanAttributes.RETRIEVAL_DOCUMENTS
_LISTED = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
_LISTED_KEY = {"tools": "name", "prompts": "name", "resources": "uri", "resourceTemplates": "uriTemplate"}
_RESOURCE_METHODS = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
# mcp.md §Recording MCP transport: stdio is a pipe, both HTTP transports are TCP.
_TRANSPORTS = {
    "stdio": NetworkTransportValues.PIPE.value,
    "pipe": NetworkTransportValues.PIPE.value,
    "http": NetworkTransportValues.TCP.value,
    "streamable-http": NetworkTransportValues.TCP.value,
    "sse": NetworkTransportValues.TCP.value,
    "tcp": NetworkTransportValues.TCP.value,
}


def span_name(method: str, target: str | None) -> str:
    """`{mcp.method.name} {target}`, the target only where it is low-cardinality (a tool or prompt name)."""
    if target and method in ("tools/call", "prompts/get"):
        return f"{method} {target}"
    return method


def request_attributes(
    method: str,
    target: str | None,
    *,
    request_id: Any,
    mcp_session_id: str | None,
    protocol_version: str | None,
    transport: str,
    tenant: str,
    subject: str,
    session_id: str | None,
    upstream: str | None,
    tool: dict[str, Any] | None,
    arguments: Any,
    recording: Recording,
) -> dict[str, Any]:
    """Everything known when the request arrives: the MCP and OpenInference request-side attributes."""
    attributes = dict(
        _about_target(method, target, tool, protocol_version, transport, tenant, subject, upstream, recording)
    )
    if method == "resources/read":
        if target:
            record_value(attributes, _INPUT, _INPUT_MIME, target, recording.hide_inputs)
    elif arguments is not None:
        record_value(attributes, _INPUT, _INPUT_MIME, arguments, recording.hide_inputs)
    if request_id is not None:
        attributes[JSONRPC_REQUEST_ID] = str(request_id)
    if mcp_session_id:
        attributes[MCP_SESSION_ID] = mcp_session_id
    if session_id:
        attributes[SpanAttributes.SESSION_ID] = session_id
    return attributes


_TargetKey = tuple[Any, ...]
_about: dict[_TargetKey, tuple[dict[str, Any] | None, dict[str, Any]]] = {}
_ABOUT_LIMIT = 4096  # distinct (method, target, caller, ...) combinations remembered


def _about_target(
    method: str,
    target: str | None,
    tool: dict[str, Any] | None,
    protocol_version: str | None,
    transport: str,
    tenant: str,
    subject: str,
    upstream: str | None,
    recording: Recording,
) -> dict[str, Any]:
    """The attributes every call of the same method, target and caller shares (the tool's schema as JSON
    among them): built once and copied per call. The tool definition is keyed by identity and kept alive by
    the entry, so a new catalog snapshot is new entries."""
    key = (method, target, id(tool), protocol_version, transport, tenant, subject, upstream, recording)
    found = _about.get(key)
    if found is not None and found[0] is tool:
        return found[1]
    attributes: dict[str, Any]
    if method == "tools/call":
        definition = tool or {}
        name = target or definition.get("name") or ""
        attributes = tool_attributes(
            name=name,
            description=definition.get("description"),
            parameters=definition.get("inputSchema"),
            arguments=None,
            result=None,
            recording=recording,
        )
        attributes[GEN_AI_TOOL_NAME] = name
        attributes[GEN_AI_OPERATION_NAME] = _EXECUTE_TOOL
    elif method == "resources/read":
        attributes = {_KIND: _RETRIEVER}
    else:
        attributes = {_KIND: _CHAIN}
        if method == "prompts/get" and target:
            attributes[GEN_AI_PROMPT_NAME] = target
    attributes[MCP_METHOD_NAME] = method
    if target and method in _RESOURCE_METHODS:
        attributes[MCP_RESOURCE_URI] = target
    if protocol_version:
        attributes[MCP_PROTOCOL_VERSION] = protocol_version
    attributes[NETWORK_TRANSPORT] = _TRANSPORTS.get(transport, transport)
    if subject:
        attributes[SpanAttributes.USER_ID] = subject
    if tenant:
        attributes[TENANT] = tenant
    if upstream:
        attributes[UPSTREAM] = upstream
    # Phoenix shows and filters on OpenInference `metadata` (a JSON object), not on vendor attributes.
    attributes[SpanAttributes.METADATA] = metadata(tenant=tenant, upstream=upstream)
    if len(_about) >= _ABOUT_LIMIT:
        _about.clear()
    _about[key] = (tool, attributes)
    return attributes


def metadata(**fields: str | None) -> str:
    """OpenInference `metadata`: a JSON object of the fields that have a value."""
    return dumps({key: value for key, value in fields.items() if value})


def result_attributes(
    method: str,
    result: Any,
    *,
    error_code: int | None,
    is_error: bool,
    recording: Recording,
) -> dict[str, Any]:
    """What the answer adds: the output (documents for resources/read) and the error type."""
    attributes: dict[str, Any] = {}
    if result is not None:
        if method == "resources/read" and isinstance(result, dict):
            _documents(attributes, result.get("contents"), recording.hide_outputs)
        elif (kind := _LISTED.get(method)) is not None and isinstance(result, dict):
            # What a reader wants of a list span is what was listed, not every definition in full.
            names = [item.get(_LISTED_KEY[kind]) for item in result.get(kind) or () if isinstance(item, dict)]
            record_value(
                attributes, SpanAttributes.OUTPUT_VALUE, SpanAttributes.OUTPUT_MIME_TYPE, names, recording.hide_outputs
            )
        else:
            record_value(
                attributes, SpanAttributes.OUTPUT_VALUE, SpanAttributes.OUTPUT_MIME_TYPE, result, recording.hide_outputs
            )
    if (error_type := mcp_error_type(error_code, is_error)) is not None:
        attributes[ERROR_TYPE] = error_type
    if error_code is not None:
        attributes[RPC_RESPONSE_STATUS_CODE] = str(error_code)
    return attributes


def mcp_error_type(error_code: int | None, is_error: bool) -> str | None:
    """`error.type` of an MCP request, on spans and metrics alike: the JSON-RPC error code, or `tool_error`
    for a result with isError."""
    if error_code is not None:
        return str(error_code)
    return TOOL_ERROR if is_error else None


def record_outcome(
    attributes: dict[str, Any],
    method: str,
    result: Any,
    *,
    error_code: int | None,
    error_message: str | None,
    is_error: bool,
    recording: Recording,
) -> tuple[bool, str | None]:
    """How a sampled MCP span ended, for both span kinds: the answer's attributes are added to `attributes`;
    returns (failed?, status description)."""
    attributes.update(result_attributes(method, result, error_code=error_code, is_error=is_error, recording=recording))
    return failure(result, error_code=error_code, error_message=error_message, is_error=is_error, recording=recording)


def failure(
    result: Any, *, error_code: int | None, error_message: str | None, is_error: bool, recording: Recording
) -> tuple[bool, str | None]:
    """(failed?, the status description): a JSON-RPC error's message; for a tool error its own words, unless
    outputs are hidden."""
    if error_code is not None:
        return True, error_message
    if not is_error:
        return False, None
    if error_message is None and not recording.hide_outputs:
        return True, tool_error_text(result)
    return True, error_message


def meta_with(meta: dict[str, Any] | None, fields: frozenset[str], carrier: dict[str, str]) -> dict[str, Any]:
    """A copy of `params._meta` carrying a span's context, unprefixed (MCP SEP-414). The client's own trace keys
    are replaced: the upstream's parent is the gateway's span, not the client's."""
    out = {k: v for k, v in meta.items() if k not in fields} if meta else {}
    out.update(carrier)
    return out


def tool_error_text(result: Any) -> str | None:
    """The first text block of an isError CallToolResult: the error's own words, for the span status."""
    if not isinstance(result, dict) or not isinstance(content := result.get("content"), list):
        return None
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(text := block.get("text"), str):
            return text
    return None


def _documents(attributes: dict[str, Any], contents: Any, hide: bool) -> None:
    """resources/read contents as `retrieval.documents.{i}`: id = URI, content = text (blobs are not copied: a
    trace is no place for binaries), metadata = JSON of the rest. Hidden outputs redact content and metadata,
    as TraceConfig does for retrieval documents."""
    if not isinstance(contents, list):
        return
    for index, item in enumerate(contents):
        if not isinstance(item, dict):
            continue
        prefix = f"{_DOCUMENTS}.{index}."
        if isinstance(uri := item.get("uri"), str):
            attributes[prefix + DocumentAttributes.DOCUMENT_ID] = uri
        metadata = {k: v for k, v in item.items() if k not in ("uri", "text", "blob")}
        if "blob" in item:
            metadata["blob"] = True
        text = item.get("text")
        if hide:
            if isinstance(text, str):
                attributes[prefix + DocumentAttributes.DOCUMENT_CONTENT] = REDACTED_VALUE
            attributes[prefix + DocumentAttributes.DOCUMENT_METADATA] = REDACTED_VALUE
            continue
        if isinstance(text, str):
            attributes[prefix + DocumentAttributes.DOCUMENT_CONTENT] = text
        if metadata:
            attributes[prefix + DocumentAttributes.DOCUMENT_METADATA] = dumps(metadata)
