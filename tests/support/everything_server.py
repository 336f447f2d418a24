"""The project's "everything server": an upstream MCP fixture for tests and conformance runs.

It implements every tool, resource, prompt, completion and logging behaviour that the official
conformance suite (`@modelcontextprotocol/conformance`, server scenarios) expects, on the SDK's
low-level `mcp.server.Server`, so that every result shape on the wire is written out here by hand.

One process serves both protocol eras:

* 2025-11-25 and older (handshake era): `initialize`, sessions, `logging/setLevel`,
  `resources/subscribe`, server-to-client requests (sampling, elicitation, roots) pushed on the
  POST's SSE stream, SSE resumability (priming events, `test_reconnection`).
* 2026-07-28 (stateless era): per-request `_meta`, `server/discover`, `subscriptions/listen`,
  and multi-round-trip `InputRequiredResult` in place of server-to-client requests.

The interactive tools work in both eras: the same tool pushes a request on a legacy connection and
returns `input_required` on a modern one (see `_gather_input`).

Run it:

    python tests/support/everything_server.py --transport http --host 127.0.0.1 --port 3001
    python tests/support/everything_server.py --transport stdio
    python -m tests.support.everything_server ...          (from the repository root)

Over HTTP it prints `READY http://HOST:PORT/mcp` on stdout once it is listening (`--port 0` picks a
free port, which that line then names). Diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import re
import struct
import sys
import warnings
import wave
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import anyio
import uvicorn
from mcp.server import CacheHint, NotificationOptions, Server, ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.subscriptions import PromptsListChanged, ResourceUpdated, ToolsListChanged
from mcp_types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    BlobResourceContents,
    CallToolRequestParams,
    CallToolResult,
    ClientCapabilities,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    ContentBlock,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    CreateMessageResultWithTools,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    GetPromptRequestParams,
    GetPromptResult,
    ImageContent,
    InputRequiredResult,
    JSONRPCMessage,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListRootsRequest,
    ListRootsResult,
    ListToolsResult,
    LoggingLevel,
    NotificationParams,
    PaginatedRequestParams,
    Prompt,
    PromptArgument,
    PromptMessage,
    PromptReference,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    Tool,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

# The handshake-era features this fixture exists to exercise (logging, sampling, roots) are
# deprecated as of 2026-07-28; silence the SDK's warnings for calls made from this module only.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning, module=re.escape(__name__))

logger = logging.getLogger("everything_server")

SERVER_NAME: Final = "mcp-gateway-everything-server"
SERVER_VERSION: Final = "1.0.0"
MCP_PATH: Final = "/mcp"

# Error code for an unknown resource. 2025-11-25 defines -32002; 2026-07-28 (SEP-2164) retired it in
# favour of -32602 (INVALID_PARAMS). Both carry `data.uri`.
LEGACY_RESOURCE_NOT_FOUND: Final = -32002

# How many handshake-era sessions the fixture remembers for notification fan-out.
MAX_LEGACY_SESSIONS: Final = 1024

# Delay between the steps of the logging and progress tools; the scenarios ask for ~50 ms so that
# the notifications arrive spread out while the call is still running.
STEP_DELAY_S: Final = 0.05


# --------------------------------------------------------------------------------------------------
# Fixture media, generated rather than pasted so it is verifiably well-formed.


def _png_1x1(rgba: tuple[int, int, int, int] = (255, 0, 0, 255)) -> bytes:
    """A valid 1x1 RGBA PNG (one red pixel by default)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)  # width, height, depth, RGBA, deflate, ...
    scanline = b"\x00" + bytes(rgba)  # filter byte 0, then the pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanline)) + chunk(b"IEND", b"")


def _wav_silence(frames: int = 8, rate: int = 8000) -> bytes:
    """A valid mono 16-bit PCM WAV file holding `frames` samples of silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


PNG_BYTES: Final = _png_1x1()
PNG_B64: Final = base64.b64encode(PNG_BYTES).decode("ascii")
WAV_B64: Final = base64.b64encode(_wav_silence()).decode("ascii")


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --------------------------------------------------------------------------------------------------
# Schemas


def _object_schema(properties: dict[str, Any] | None = None, required: Sequence[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = list(required)
    return schema


NO_ARGUMENTS: Final = _object_schema()
NAME_SCHEMA: Final = _object_schema({"name": {"type": "string"}}, ["name"])
CONFIRM_SCHEMA: Final = _object_schema({"ok": {"type": "boolean"}}, ["ok"])

# The inputSchema the json-schema-2020-12 scenario expects verbatim: it checks that $schema, $defs,
# $anchor, additionalProperties, allOf/anyOf and if/then/else all survive tools/list.
JSON_SCHEMA_2020_12_INPUT: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

# SEP-1034: a default for every primitive type.
SEP1034_SCHEMA: Final = _object_schema(
    {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    }
)

# SEP-1330: the five enum shapes, one property each.
SEP1330_SCHEMA: Final = _object_schema(
    {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    required=["untitledSingle", "titledSingle", "legacyEnum", "untitledMulti", "titledMulti"],
)


# --------------------------------------------------------------------------------------------------
# Server-to-client input in both eras


InputRequest = ElicitRequest | CreateMessageRequest | ListRootsRequest
InputResponse = ElicitResult | CreateMessageResult | CreateMessageResultWithTools | ListRootsResult

# What answers each kind of input request, and the client capability it needs.
_ANSWER_TYPES: Final[dict[str, tuple[type[InputResponse], ...]]] = {
    "elicitation/create": (ElicitResult,),
    "sampling/createMessage": (CreateMessageResult, CreateMessageResultWithTools),
    "roots/list": (ListRootsResult,),
}
_PUSH_RESULT_TYPE: Final[dict[str, type[InputResponse]]] = {
    "elicitation/create": ElicitResult,
    "sampling/createMessage": CreateMessageResult,
    "roots/list": ListRootsResult,
}
_CAPABILITY_FOR: Final[dict[str, Literal["elicitation", "sampling", "roots"]]] = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}


class MissingClientCapability(Exception):
    """The request needs a client capability the client did not declare."""

    def __init__(self, capability: str) -> None:
        super().__init__(f"This request needs the client capability {capability!r}, which the client did not declare")
        self.capability = capability

    def to_mcp_error(self) -> MCPError:
        """The 2026-07-28 answer: -32021 naming the capability (HTTP 400 on the modern path)."""
        return MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=str(self),
            data={"requiredCapabilities": {self.capability: {}}},
        )


class ClientRequestFailed(Exception):
    """A server-to-client request pushed on a legacy connection failed or could not be sent."""


def _is_modern(ctx: ServerRequestContext[Any, Any]) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _declared(capabilities: ClientCapabilities | None, capability: str) -> bool:
    return capabilities is not None and getattr(capabilities, capability, None) is not None


def _elicit(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(prompt: str, max_tokens: int = 100) -> CreateMessageRequest:
    return CreateMessageRequest(
        params=CreateMessageRequestParams(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=max_tokens,
        )
    )


@dataclass(frozen=True)
class InputCarrier:
    """The MRTR fields of a retried `tools/call`, `prompts/get` or `resources/read` (2026-07-28).

    `request_state` is plaintext here: `RequestStateBoundary` verified and unsealed it before any
    handler ran, and seals whatever state a handler returns.
    """

    input_responses: Mapping[str, InputResponse] | None = None
    request_state: str | None = None

    @classmethod
    def of(cls, params: CallToolRequestParams | GetPromptRequestParams | ReadResourceRequestParams) -> InputCarrier:
        return cls(params.input_responses, params.request_state)


async def _gather_input(
    ctx: ServerRequestContext[Any, Any],
    carrier: InputCarrier,
    requests: Mapping[str, InputRequest],
    *,
    request_state: str | None = None,
) -> dict[str, InputResponse] | InputRequiredResult:
    """Collect the client's answers to `requests`, keyed like `requests`.

    Legacy era: each request is pushed to the client on the current POST's SSE stream and awaited.
    Modern era: the answers come from the retry's `inputResponses`; if any is missing or of the
    wrong kind, an `InputRequiredResult` re-asking for exactly those is returned for the caller to
    hand back as its result (the spec's SHOULD: re-request rather than error).

    Raises:
        MissingClientCapability: the client did not declare a capability a request needs.
        ClientRequestFailed: a legacy push failed (client error, no back-channel).
    """
    capabilities = ctx.session.client_capabilities
    for request in requests.values():
        capability = _CAPABILITY_FOR[request.method]
        if not _declared(capabilities, capability):
            raise MissingClientCapability(capability)

    if not _is_modern(ctx):
        answers: dict[str, InputResponse] = {}
        for key, request in requests.items():
            try:
                answers[key] = await ctx.session.send_request(
                    request,
                    _PUSH_RESULT_TYPE[request.method],
                    metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
                )
            except (MCPError, ValidationError) as exc:
                raise ClientRequestFailed(f"{request.method} failed: {exc}") from exc
        return answers

    given = carrier.input_responses or {}
    answers = {
        key: given[key]
        for key, request in requests.items()
        if isinstance(given.get(key), _ANSWER_TYPES[request.method])
    }
    if len(answers) == len(requests):
        return answers
    missing = {key: request for key, request in requests.items() if key not in answers}
    return InputRequiredResult(input_requests=missing, request_state=request_state)


def _elicitation_summary(answer: InputResponse) -> tuple[str, str]:
    """(action, compact JSON of the content) of an elicitation answer."""
    assert isinstance(answer, ElicitResult)
    return answer.action, _compact_json(answer.content or {})


def _sampled_text(answer: InputResponse) -> str:
    assert isinstance(answer, CreateMessageResult | CreateMessageResultWithTools)
    blocks = answer.content if isinstance(answer.content, list) else [answer.content]
    texts = [block.text for block in blocks if isinstance(block, TextContent)]
    return " ".join(texts) if texts else "(no text in the sampled message)"


# --------------------------------------------------------------------------------------------------
# SSE resumability


class BoundedInMemoryEventStore(EventStore):
    """Event store for SSE resumability (SEP-1699) holding the most recent `max_events` events.

    Event ids are a global counter, so "after id N on stream S" is a range scan. Bounded so a
    long-lived fixture (benchmarks) doesn't grow without limit; a client resuming past the window
    just gets no replay.
    """

    def __init__(self, max_events: int = 10_000) -> None:
        self._max_events = max_events
        self._events: OrderedDict[int, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._last_id = 0

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        self._last_id += 1
        self._events[self._last_id] = (stream_id, message)
        while len(self._events) > self._max_events:
            self._events.popitem(last=False)
        return str(self._last_id)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        try:
            after = int(last_event_id)
        except ValueError:
            return None
        known = self._events.get(after)
        if known is None:
            return None
        stream_id = known[0]
        for event_id, (event_stream, message) in list(self._events.items()):
            # None marks a priming event: it only anchors the cursor and is never replayed.
            if event_id > after and event_stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream_id


# --------------------------------------------------------------------------------------------------
# The server


ToolOutcome = CallToolResult | InputRequiredResult | str
ToolHandler = Callable[["ToolCall"], Awaitable[ToolOutcome]]


@dataclass(frozen=True)
class ToolCall:
    ctx: ServerRequestContext[Any, Any]
    params: CallToolRequestParams

    @property
    def arguments(self) -> dict[str, Any]:
        return self.params.arguments or {}

    @property
    def carrier(self) -> InputCarrier:
        return InputCarrier.of(self.params)

    def string_argument(self, name: str) -> str:
        value = self.arguments.get(name)
        if not isinstance(value, str):
            raise ToolInputError(f"argument {name!r} is required and must be a string")
        return value


class ToolInputError(Exception):
    """The tool's arguments are unusable; reported as a tool execution error (`isError`)."""


@dataclass(frozen=True)
class RegisteredTool:
    tool: Tool
    handler: ToolHandler


_LOG_LEVEL_ORDER: Final[tuple[LoggingLevel, ...]] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)


class EverythingServer:
    """Builds and serves the fixture. Holds the little state the fixture has.

    Legacy sessions are told apart by their `Mcp-Session-Id` (HTTP) or are the one stdio session;
    that key scopes `logging/setLevel` and `resources/subscribe`, and lets list-changed and
    resource-updated notifications fan out to every initialized legacy session. Modern clients get
    the same events on `subscriptions/listen` streams through the subscription bus.
    """

    STATIC_TEXT: Final = "This is the content of the static text resource."
    WATCHED_URI: Final = "test://watched-resource"
    TEMPLATE: Final = "test://template/{id}/data"
    _TEMPLATE_RE: Final = re.compile(r"^test://template/(?P<id>[^/]+)/data$")

    def __init__(self) -> None:
        self.watched_content = "Watched resource content"
        self._bus = InMemorySubscriptionBus()
        # Oldest first, capped at MAX_LEGACY_SESSIONS: the SDK offers no hook for a session's end
        # (a notification to a closed one is silently dropped), so the registry is bounded instead.
        self._legacy_sessions: OrderedDict[str, ServerSession] = OrderedDict()
        self._legacy_log_levels: dict[str, LoggingLevel] = {}
        self._legacy_subscriptions: dict[str, set[str]] = {}
        self._tools: dict[str, RegisteredTool] = {}
        self._register_tools()
        self.server = self._build_server()

    # ---------------------------------------------------------------- construction

    def _build_server(self) -> Server[Any]:
        lists_hint = CacheHint(ttl_ms=10_000, scope="public")
        server = _LegacyListChangedServer(
            SERVER_NAME,
            version=SERVER_VERSION,
            title="MCP gateway everything server",
            instructions="Conformance fixture: every MCP feature, both protocol eras.",
            # SEP-2549 caching hints on the cacheable 2026-07-28 results. resources/read is
            # immediately stale because test://watched-resource changes.
            cache_hints={
                "server/discover": lists_hint,
                "tools/list": lists_hint,
                "prompts/list": lists_hint,
                "resources/list": lists_hint,
                "resources/templates/list": lists_hint,
                "resources/read": CacheHint(ttl_ms=0, scope="public"),
            },
            # Lets the modern HTTP path validate Mcp-Param-* headers without calling tools/list.
            get_tool_input_schema=self._tool_input_schema,
            on_list_tools=self._on_list_tools,
            on_call_tool=self._on_call_tool,
            on_list_resources=self._on_list_resources,
            on_list_resource_templates=self._on_list_resource_templates,
            on_read_resource=self._on_read_resource,
            on_subscribe_resource=self._on_subscribe,
            on_unsubscribe_resource=self._on_unsubscribe,
            on_subscriptions_listen=ListenHandler(self._bus),
            on_list_prompts=self._on_list_prompts,
            on_get_prompt=self._on_get_prompt,
            on_completion=self._on_completion,
            on_set_logging_level=self._on_set_logging_level,
        )
        server.add_notification_handler("notifications/initialized", NotificationParams, self._on_initialized)
        # Seals every outgoing requestState and verifies every echoed one (AES-GCM under a key
        # that lives as long as this process), so a tampered state is rejected with -32602 before
        # any handler runs.
        server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=SERVER_NAME))
        return server

    def _tool(
        self, name: str, description: str, input_schema: dict[str, Any] | None = None
    ) -> Callable[[ToolHandler], ToolHandler]:
        def register(handler: ToolHandler) -> ToolHandler:
            tool = Tool(name=name, description=description, input_schema=input_schema or NO_ARGUMENTS)
            self._tools[name] = RegisteredTool(tool, handler)
            return handler

        return register

    # ---------------------------------------------------------------- legacy session bookkeeping

    @staticmethod
    def _session_key(ctx: ServerRequestContext[Any, Any]) -> str:
        headers = getattr(ctx.request, "headers", None)
        session_id = headers.get("mcp-session-id") if headers is not None else None
        return session_id or "stdio"

    async def _on_initialized(self, ctx: ServerRequestContext[Any, Any], params: NotificationParams) -> None:
        # The session proxy's standalone channel outlives this notification, so it can carry
        # later unsolicited notifications (GET stream on HTTP, stdout on stdio).
        key = self._session_key(ctx)
        self._legacy_sessions[key] = ctx.session
        self._legacy_sessions.move_to_end(key)
        while len(self._legacy_sessions) > MAX_LEGACY_SESSIONS:
            self._forget_session(next(iter(self._legacy_sessions)))

    def _forget_session(self, key: str) -> None:
        self._legacy_sessions.pop(key, None)
        self._legacy_subscriptions.pop(key, None)
        self._legacy_log_levels.pop(key, None)

    async def _notify_legacy_sessions(
        self, send: Callable[[ServerSession], Awaitable[None]], keys: Sequence[str] | None = None
    ) -> None:
        for key in list(self._legacy_sessions if keys is None else keys):
            session = self._legacy_sessions.get(key)
            if session is None:
                continue
            try:
                await send(session)
            except Exception:  # a session that has gone away: forget it
                logger.debug("dropping legacy session %s", key, exc_info=True)
                self._forget_session(key)

    async def _log(self, ctx: ServerRequestContext[Any, Any], level: LoggingLevel, message: str) -> None:
        """Send `notifications/message` on the current request's stream, if the client wants it.

        Modern era: the SDK drops it unless this request's `_meta` asked for that level. Legacy
        era: the level set by this session's `logging/setLevel` filters it (all levels by default).
        """
        if not _is_modern(ctx):
            threshold = self._legacy_log_levels.get(self._session_key(ctx))
            if threshold is not None and _LOG_LEVEL_ORDER.index(level) < _LOG_LEVEL_ORDER.index(threshold):
                return
        await ctx.session.send_log_message(level, message, logger=SERVER_NAME, related_request_id=ctx.request_id)

    async def _on_set_logging_level(
        self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams
    ) -> EmptyResult:
        self._legacy_log_levels[self._session_key(ctx)] = params.level
        return EmptyResult()

    # ---------------------------------------------------------------- tools

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        registered = self._tools.get(name)
        return None if registered is None else registered.tool.input_schema

    async def _on_list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[registered.tool for registered in self._tools.values()])

    async def _on_call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        registered = self._tools.get(params.name)
        if registered is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}", data={"name": params.name})
        try:
            outcome = await registered.handler(ToolCall(ctx, params))
        except MissingClientCapability as exc:
            if _is_modern(ctx):
                raise exc.to_mcp_error() from None
            # 2025-11-25 has no error code for this: report it as a tool execution error.
            return _tool_error(str(exc))
        except (ToolInputError, ClientRequestFailed) as exc:
            return _tool_error(str(exc))
        if isinstance(outcome, str):
            return CallToolResult(content=[TextContent(type="text", text=outcome)])
        return outcome

    def _register_tools(self) -> None:
        tool = self._tool

        @tool("test_simple_text", "Returns one text block")
        async def simple_text(call: ToolCall) -> ToolOutcome:
            return "This is a simple text response for testing."

        @tool("test_image_content", "Returns one image block (a 1x1 PNG)")
        async def image_content(call: ToolCall) -> ToolOutcome:
            return CallToolResult(content=[ImageContent(type="image", data=PNG_B64, mime_type="image/png")])

        @tool("test_audio_content", "Returns one audio block (a short silent WAV)")
        async def audio_content(call: ToolCall) -> ToolOutcome:
            return CallToolResult(content=[AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")])

        @tool("test_embedded_resource", "Returns one embedded text resource")
        async def embedded_resource(call: ToolCall) -> ToolOutcome:
            resource = TextResourceContents(
                uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
            )
            return CallToolResult(content=[EmbeddedResource(type="resource", resource=resource)])

        @tool("test_multiple_content_types", "Returns text, image and embedded resource blocks")
        async def multiple_content_types(call: ToolCall) -> ToolOutcome:
            resource = TextResourceContents(
                uri="test://mixed-content-resource",
                mime_type="application/json",
                text=_compact_json({"test": "data", "value": 123}),
            )
            content: list[ContentBlock] = [
                TextContent(type="text", text="Multiple content types test:"),
                ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
                EmbeddedResource(type="resource", resource=resource),
            ]
            return CallToolResult(content=content)

        @tool("test_tool_with_logging", "Sends three info log notifications ~50 ms apart while running")
        async def tool_with_logging(call: ToolCall) -> ToolOutcome:
            await self._log(call.ctx, "info", "Tool execution started")
            await anyio.sleep(STEP_DELAY_S)
            await self._log(call.ctx, "info", "Tool processing data")
            await anyio.sleep(STEP_DELAY_S)
            await self._log(call.ctx, "info", "Tool execution completed")
            return "Tool with logging executed successfully"

        @tool("test_error_handling", "Always fails with a tool execution error (isError: true)")
        async def error_handling(call: ToolCall) -> ToolOutcome:
            return _tool_error("This tool intentionally returns an error for testing")

        @tool("test_tool_with_progress", "Reports progress 0, 50, 100 of 100 when the call carries a progressToken")
        async def tool_with_progress(call: ToolCall) -> ToolOutcome:
            # report_progress is a no-op when the request carried no progressToken.
            for step, progress in enumerate((0, 50, 100)):
                if step:
                    await anyio.sleep(STEP_DELAY_S)
                await call.ctx.session.report_progress(progress, 100, f"Completed step {progress} of 100")
            token = call.ctx.meta.get("progress_token") if call.ctx.meta else None
            return f"Progress test completed (progressToken={token!r})"

        @tool(
            "test_sampling",
            "Asks the client to sample an LLM completion for `prompt` and returns the reply",
            _object_schema({"prompt": {"type": "string", "description": "The prompt to send to the LLM"}}, ["prompt"]),
        )
        async def sampling(call: ToolCall) -> ToolOutcome:
            answers = await _gather_input(call.ctx, call.carrier, {"sampling": _sample(call.string_argument("prompt"))})
            if isinstance(answers, InputRequiredResult):
                return answers
            return f"LLM response: {_sampled_text(answers['sampling'])}"

        @tool(
            "test_elicitation",
            "Asks the user (form elicitation) for a response to `message`",
            _object_schema({"message": {"type": "string", "description": "The message to show the user"}}, ["message"]),
        )
        async def elicitation(call: ToolCall) -> ToolOutcome:
            schema = _object_schema({"response": {"type": "string", "description": "User's response"}}, ["response"])
            answers = await _gather_input(
                call.ctx, call.carrier, {"elicitation": _elicit(call.string_argument("message"), schema)}
            )
            if isinstance(answers, InputRequiredResult):
                return answers
            action, content = _elicitation_summary(answers["elicitation"])
            return f"User response: action={action}, content={content}"

        @tool("test_elicitation_sep1034_defaults", "Elicits a form whose fields all carry defaults (SEP-1034)")
        async def elicitation_defaults(call: ToolCall) -> ToolOutcome:
            request = _elicit("Please provide user information", SEP1034_SCHEMA)
            answers = await _gather_input(call.ctx, call.carrier, {"defaults": request})
            if isinstance(answers, InputRequiredResult):
                return answers
            action, content = _elicitation_summary(answers["defaults"])
            return f"Elicitation completed: action={action}, content={content}"

        @tool("test_elicitation_sep1330_enums", "Elicits a form with the five enum shapes of SEP-1330")
        async def elicitation_enums(call: ToolCall) -> ToolOutcome:
            request = _elicit("Please select values using different enum schema types", SEP1330_SCHEMA)
            answers = await _gather_input(call.ctx, call.carrier, {"enums": request})
            if isinstance(answers, InputRequiredResult):
                return answers
            action, content = _elicitation_summary(answers["enums"])
            return f"Elicitation completed: action={action}, content={content}"

        @tool(
            "test_reconnection",
            "Closes its own SSE response stream mid-call, then answers; the client must resume with "
            "Last-Event-ID (SEP-1699). Legacy streamable HTTP only; elsewhere it just answers.",
        )
        async def reconnection(call: ToolCall) -> ToolOutcome:
            await self._log(call.ctx, "info", "Before disconnect")
            # Set by the SDK only on a legacy HTTP session with an event store and a client at
            # 2025-11-25 or later (MCP-Protocol-Version header); older clients can't resume.
            if call.ctx.close_sse_stream is not None:
                await call.ctx.close_sse_stream()
                await anyio.sleep(0.2)  # let the client reconnect; what follows is stored for replay
            await self._log(call.ctx, "info", "After reconnect")
            return "Reconnection test completed"

        @tool(
            "json_schema_2020_12_tool",
            "Has an inputSchema using JSON Schema 2020-12 keywords ($schema, $defs, $anchor, allOf, if/then/else)",
            JSON_SCHEMA_2020_12_INPUT,
        )
        async def json_schema_2020_12(call: ToolCall) -> ToolOutcome:
            return f"json_schema_2020_12_tool called with: {_compact_json(call.arguments)}"

        @tool(
            "test_x_mcp_header",
            "Echoes `region`, which 2026-07-28 clients mirror into the Mcp-Param-Region header (SEP-2243)",
            _object_schema(
                {"region": {"type": "string", "description": "Mirrored as Mcp-Param-Region", "x-mcp-header": "Region"}}
            ),
        )
        async def x_mcp_header(call: ToolCall) -> ToolOutcome:
            return f"region={call.arguments.get('region', '<none>')}"

        @tool("test_missing_capability", "Needs the client's sampling capability; fails with -32021 without it")
        async def missing_capability(call: ToolCall) -> ToolOutcome:
            if not _declared(call.ctx.session.client_capabilities, "sampling"):
                raise MissingClientCapability("sampling")
            return "Client declared the sampling capability."

        @tool(
            "test_streaming_elicitation",
            "Streams progress, then asks for a name by elicitation: input_required on 2026-07-28 "
            "(never a server-to-client request on the response stream), a pushed request before",
        )
        async def streaming_elicitation(call: ToolCall) -> ToolOutcome:
            await call.ctx.session.report_progress(50, 100, "Asking for a name")
            answers = await _gather_input(
                call.ctx, call.carrier, {"user_name": _elicit("What is your name?", NAME_SCHEMA)}
            )
            if isinstance(answers, InputRequiredResult):
                return answers
            action, content = _elicitation_summary(answers["user_name"])
            return f"Streaming elicitation completed: action={action}, content={content}"

        @tool(
            "test_logging_tool",
            "Logs at info level; on 2026-07-28 nothing may be sent unless the request's _meta asks for a logLevel",
        )
        async def logging_tool(call: ToolCall) -> ToolOutcome:
            await self._log(call.ctx, "info", "Diagnostic trace logging activated")
            return "Logging evaluated"

        @tool(
            "test_trigger_tool_change", "Announces a tools list change to listeners (listen streams, legacy sessions)"
        )
        async def trigger_tool_change(call: ToolCall) -> ToolOutcome:
            await self._bus.publish(ToolsListChanged())
            await self._notify_legacy_sessions(lambda session: session.send_tool_list_changed())
            return "tools list change announced"

        @tool("test_trigger_prompt_change", "Announces a prompts list change to listeners")
        async def trigger_prompt_change(call: ToolCall) -> ToolOutcome:
            await self._bus.publish(PromptsListChanged())
            await self._notify_legacy_sessions(lambda session: session.send_prompt_list_changed())
            return "prompts list change announced"

        @tool(
            "test_update_watched_resource",
            "Replaces the content of test://watched-resource and notifies its subscribers",
            _object_schema({"content": {"type": "string", "description": "The new content"}}),
        )
        async def update_watched_resource(call: ToolCall) -> ToolOutcome:
            content = call.arguments.get("content")
            self.watched_content = content if isinstance(content, str) else f"{self.watched_content}+"
            await self._bus.publish(ResourceUpdated(uri=self.WATCHED_URI))
            subscribers = [key for key, uris in self._legacy_subscriptions.items() if self.WATCHED_URI in uris]
            await self._notify_legacy_sessions(
                lambda session: session.send_resource_updated(self.WATCHED_URI), keys=subscribers
            )
            return f"{self.WATCHED_URI} updated"

        # ---- SEP-2322 multi-round-trip fixtures (input-required-result-* scenarios). On a legacy
        # connection they fall back to pushed requests through the same _gather_input.

        @tool("test_input_required_result_elicitation", "Needs one elicitation answer (key user_name)")
        async def mrtr_elicitation(call: ToolCall) -> ToolOutcome:
            answers = await _gather_input(
                call.ctx, call.carrier, {"user_name": _elicit("What is your name?", NAME_SCHEMA)}
            )
            if isinstance(answers, InputRequiredResult):
                return answers
            answer = answers["user_name"]
            name = answer.content.get("name") if isinstance(answer, ElicitResult) and answer.content else None
            return f"Hello, {name or 'stranger'}!"

        @tool("test_input_required_result_sampling", "Needs one sampling answer (key capital_question)")
        async def mrtr_sampling(call: ToolCall) -> ToolOutcome:
            request = _sample("What is the capital of France?")
            answers = await _gather_input(call.ctx, call.carrier, {"capital_question": request})
            if isinstance(answers, InputRequiredResult):
                return answers
            return f"Model said: {_sampled_text(answers['capital_question'])}"

        @tool("test_input_required_result_list_roots", "Needs the client's roots (key client_roots)")
        async def mrtr_list_roots(call: ToolCall) -> ToolOutcome:
            answers = await _gather_input(call.ctx, call.carrier, {"client_roots": ListRootsRequest()})
            if isinstance(answers, InputRequiredResult):
                return answers
            roots = answers["client_roots"]
            uris = [str(root.uri) for root in roots.roots] if isinstance(roots, ListRootsResult) else []
            return f"Client roots: {', '.join(uris) or '(none)'}"

        @tool("test_input_required_result_request_state", "Needs a confirmation and the requestState it minted")
        async def mrtr_request_state(call: ToolCall) -> ToolOutcome:
            minted = "awaiting-confirmation"
            answers = await _gather_input(
                call.ctx, call.carrier, {"confirm": _elicit("Please confirm", CONFIRM_SCHEMA)}, request_state=minted
            )
            if isinstance(answers, InputRequiredResult):
                return answers
            if _is_modern(call.ctx) and call.carrier.request_state != minted:
                # Answers without the state this server minted: start over.
                return InputRequiredResult(
                    input_requests={"confirm": _elicit("Please confirm", CONFIRM_SCHEMA)}, request_state=minted
                )
            return "state-ok: confirmation received"

        @tool("test_input_required_result_multiple_inputs", "Needs elicitation, sampling and roots answers at once")
        async def mrtr_multiple_inputs(call: ToolCall) -> ToolOutcome:
            requests: dict[str, InputRequest] = {
                "user_name": _elicit("What is your name?", NAME_SCHEMA),
                "greeting": _sample("Generate a greeting", max_tokens=50),
                "client_roots": ListRootsRequest(),
            }
            answers = await _gather_input(call.ctx, call.carrier, requests, request_state="multiple-inputs")
            if isinstance(answers, InputRequiredResult):
                return answers
            return f"All inputs received: {', '.join(sorted(answers))}"

        @tool("test_input_required_result_multi_round", "Asks for a name, then a colour, in two rounds")
        async def mrtr_multi_round(call: ToolCall) -> ToolOutcome:
            # The state names the round we are in and carries what earlier rounds learned.
            state: dict[str, Any] = json.loads(call.carrier.request_state) if call.carrier.request_state else {}
            if state.get("round") != 2:
                step1 = await _gather_input(
                    call.ctx,
                    call.carrier,
                    {"step1": _elicit("Step 1: What is your name?", NAME_SCHEMA)},
                    request_state=_compact_json({"round": 1}),
                )
                if isinstance(step1, InputRequiredResult):
                    return step1
                answer = step1["step1"]
                name = answer.content.get("name") if isinstance(answer, ElicitResult) and answer.content else None
                state = {"round": 2, "name": name}
                # This round's answers are spent; the next round starts with none.
                call = ToolCall(call.ctx, call.params.model_copy(update={"input_responses": None}))
            color_schema = _object_schema({"color": {"type": "string"}}, ["color"])
            step2 = await _gather_input(
                call.ctx,
                call.carrier,
                {"step2": _elicit("Step 2: What is your favorite color?", color_schema)},
                request_state=_compact_json(state),
            )
            if isinstance(step2, InputRequiredResult):
                return step2
            answer = step2["step2"]
            color = answer.content.get("color") if isinstance(answer, ElicitResult) and answer.content else None
            return f"{state.get('name')} likes {color}."

        @tool(
            "test_input_required_result_tampered_state",
            "Issues an integrity-protected requestState; a modified echo is rejected with -32602",
        )
        async def mrtr_tampered_state(call: ToolCall) -> ToolOutcome:
            # Reaching this code with a state at all means RequestStateBoundary verified it.
            answers = await _gather_input(
                call.ctx, call.carrier, {"confirm": _elicit("Please confirm", CONFIRM_SCHEMA)}, request_state="round-1"
            )
            if isinstance(answers, InputRequiredResult):
                return answers
            return f"state-ok: {call.carrier.request_state or 'no state (legacy connection)'}"

        @tool(
            "test_input_required_result_capabilities",
            "Asks only for the inputs the request's declared client capabilities allow",
        )
        async def mrtr_capabilities(call: ToolCall) -> ToolOutcome:
            capabilities = call.ctx.session.client_capabilities
            offered: dict[str, InputRequest] = {}
            if _declared(capabilities, "sampling"):
                offered["sample_input"] = _sample("Sample request", max_tokens=50)
            if _declared(capabilities, "elicitation"):
                value_schema = _object_schema({"value": {"type": "string"}}, ["value"])
                offered["elicit_input"] = _elicit("Elicitation input", value_schema)
            if not offered:
                return "No supported client capabilities declared; nothing to ask."
            answers = await _gather_input(call.ctx, call.carrier, offered, request_state="capability-gated")
            if isinstance(answers, InputRequiredResult):
                return answers
            return f"capabilities-ok: received {','.join(sorted(answers))}"

    # ---------------------------------------------------------------- resources

    async def _on_list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        return ListResourcesResult(
            resources=[
                Resource(
                    uri="test://static-text",
                    name="static-text",
                    description="A static text resource",
                    mime_type="text/plain",
                ),
                Resource(
                    uri="test://static-binary",
                    name="static-binary",
                    description="A static binary resource (a 1x1 PNG)",
                    mime_type="image/png",
                ),
                Resource(
                    uri=self.WATCHED_URI,
                    name="watched-resource",
                    description="A resource that can be subscribed to; test_update_watched_resource changes it",
                    mime_type="text/plain",
                ),
            ]
        )

    async def _on_list_resource_templates(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        template = ResourceTemplate(
            uri_template=self.TEMPLATE,
            name="template",
            description="A resource template: {id} is substituted into the content",
            mime_type="application/json",
        )
        return ListResourceTemplatesResult(resource_templates=[template])

    async def _on_read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        uri = str(params.uri)
        contents: TextResourceContents | BlobResourceContents
        if uri == "test://static-text":
            contents = TextResourceContents(uri=uri, mime_type="text/plain", text=self.STATIC_TEXT)
        elif uri == "test://static-binary":
            contents = BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG_B64)
        elif uri == self.WATCHED_URI:
            contents = TextResourceContents(uri=uri, mime_type="text/plain", text=self.watched_content)
        elif match := self._TEMPLATE_RE.match(uri):
            item_id = match["id"]
            text = _compact_json({"id": item_id, "templateTest": True, "data": f"Data for ID: {item_id}"})
            contents = TextResourceContents(uri=uri, mime_type="application/json", text=text)
        else:
            code = INVALID_PARAMS if _is_modern(ctx) else LEGACY_RESOURCE_NOT_FOUND
            raise MCPError(code=code, message=f"Resource not found: {uri}", data={"uri": uri})
        return ReadResourceResult(contents=[contents])

    async def _on_subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        self._legacy_subscriptions.setdefault(self._session_key(ctx), set()).add(str(params.uri))
        return EmptyResult()

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        self._legacy_subscriptions.get(self._session_key(ctx), set()).discard(str(params.uri))
        return EmptyResult()

    # ---------------------------------------------------------------- prompts

    _PROMPTS: Final = (
        Prompt(name="test_simple_prompt", description="A simple prompt without arguments"),
        Prompt(
            name="test_prompt_with_arguments",
            description="A prompt with two required arguments",
            arguments=[
                PromptArgument(name="arg1", description="First argument", required=True),
                PromptArgument(name="arg2", description="Second argument", required=True),
            ],
        ),
        Prompt(
            name="test_prompt_with_embedded_resource",
            description="A prompt embedding the resource named by resourceUri",
            arguments=[PromptArgument(name="resourceUri", description="URI of the resource to embed", required=True)],
        ),
        Prompt(name="test_prompt_with_image", description="A prompt containing an image"),
        Prompt(
            name="test_input_required_result_prompt",
            description="Needs one elicitation answer (key user_context) before it can render (SEP-2322)",
        ),
    )

    async def _on_list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListPromptsResult:
        return ListPromptsResult(prompts=list(self._PROMPTS))

    async def _on_get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: GetPromptRequestParams
    ) -> GetPromptResult | InputRequiredResult:
        prompt = next((p for p in self._PROMPTS if p.name == params.name), None)
        if prompt is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {params.name}", data={"name": params.name})
        arguments = params.arguments or {}
        missing = [a.name for a in prompt.arguments or () if a.required and a.name not in arguments]
        if missing:
            raise MCPError(code=INVALID_PARAMS, message=f"Missing required prompt arguments: {', '.join(missing)}")

        def user(content: ContentBlock) -> PromptMessage:
            return PromptMessage(role="user", content=content)

        def text(value: str) -> TextContent:
            return TextContent(type="text", text=value)

        messages: list[PromptMessage]
        match params.name:
            case "test_simple_prompt":
                messages = [user(text("This is a simple prompt for testing."))]
            case "test_prompt_with_arguments":
                arg1, arg2 = arguments["arg1"], arguments["arg2"]
                messages = [user(text(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"))]
            case "test_prompt_with_embedded_resource":
                resource = TextResourceContents(
                    uri=arguments["resourceUri"], mime_type="text/plain", text="Embedded resource content for testing."
                )
                messages = [
                    user(EmbeddedResource(type="resource", resource=resource)),
                    user(text("Please process the embedded resource above.")),
                ]
            case "test_prompt_with_image":
                messages = [
                    user(ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
                    user(text("Please analyze the image above.")),
                ]
            case _:  # test_input_required_result_prompt
                context_schema = _object_schema({"context": {"type": "string"}}, ["context"])
                request = _elicit("What context should the prompt use?", context_schema)
                try:
                    answers = await _gather_input(ctx, InputCarrier.of(params), {"user_context": request})
                except MissingClientCapability as exc:
                    if _is_modern(ctx):
                        raise exc.to_mcp_error() from None
                    raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None
                except ClientRequestFailed as exc:
                    raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
                if isinstance(answers, InputRequiredResult):
                    return answers
                answer = answers["user_context"]
                context = answer.content.get("context") if isinstance(answer, ElicitResult) and answer.content else None
                messages = [user(text(f"Use the following context: {context or '(none given)'}"))]
        return GetPromptResult(description=prompt.description, messages=messages)

    # ---------------------------------------------------------------- completion

    _COMPLETIONS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
        ("test_prompt_with_arguments", "arg1"): ("paris", "park", "party", "test", "testing"),
        ("test_prompt_with_arguments", "arg2"): ("alpha", "beta", "gamma"),
        ("test://template/{id}/data", "id"): ("1", "2", "3", "42", "123"),
    }

    async def _on_completion(
        self, ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams
    ) -> CompleteResult:
        ref = params.ref
        target = ref.name if isinstance(ref, PromptReference) else cast(ResourceTemplateReference, ref).uri
        candidates = self._COMPLETIONS.get((target, params.argument.name), ())
        values = [value for value in candidates if value.startswith(params.argument.value)]
        return CompleteResult(completion=Completion(values=values, total=len(values), has_more=False))


def _tool_error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


class _LegacyListChangedServer(Server[Any]):
    """Advertises `listChanged` for tools, prompts and resources on handshake-era connections.

    The SDK derives handshake-era capabilities from `create_initialization_options()`, and the
    streamable-HTTP session path calls it without arguments, so the default (no `listChanged`)
    would otherwise win there. (2026-07-28 capabilities follow `subscriptions/listen` instead.)
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        if notification_options is None:
            notification_options = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        return super().create_initialization_options(notification_options, experimental_capabilities, extensions)


# --------------------------------------------------------------------------------------------------
# Transports


_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")


class StripHeaderWhitespace:
    """ASGI middleware removing optional whitespace around header values (RFC 9110 section 5.5).

    uvicorn's httptools parser keeps trailing whitespace in a field value (h11 strips it), and the
    SDK compares `Mcp-Name`/`Mcp-Method` to the body verbatim, so `Mcp-Name: "  tool  "` would be
    refused with -32020 although HTTP says the value is `tool`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(name, value.strip(b" \t")) for name, value in scope["headers"]]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def build_http_app(fixture: EverythingServer, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app serving both eras at `/mcp` (its lifespan runs the session manager)."""
    allowed_hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    allowed_origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if host not in _LOOPBACK_HOSTS and host not in ("0.0.0.0", "::"):
        allowed_hosts.append(f"{host}:*")
        allowed_origins.append(f"http://{host}:*")
    app = fixture.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        # SSE resumability for the legacy era: priming events carry an id and a retry hint, and
        # test_reconnection's closed stream can be resumed with Last-Event-ID.
        event_store=BoundedInMemoryEventStore(),
        retry_interval=100,
        # DNS-rebinding protection (dns-rebinding-protection scenario): only loopback Host/Origin.
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
        ),
        host=host,
    )
    return StripHeaderWhitespace(app)


async def serve_http(host: str, port: int, log_level: str) -> int:
    """Serve until interrupted; announce `READY <url>` on stdout once listening. Returns an exit code."""
    fixture = EverythingServer()
    config = uvicorn.Config(
        build_http_app(fixture, host),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        lifespan="on",
        # Streams held open by clients (GET streams, listens) must not delay shutdown for long.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    stopped = anyio.Event()
    exit_code = 0

    async def run() -> None:
        nonlocal exit_code
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits on a startup failure, e.g. the port is taken
            exit_code = exc.code if isinstance(exc.code, int) else 1
        finally:
            stopped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        while not server.started and not stopped.is_set():
            await anyio.sleep(0.01)
        if server.started:
            bound_port = server.servers[0].sockets[0].getsockname()[1]
            url_host = f"[{host}]" if ":" in host else host
            print(f"READY http://{url_host}:{bound_port}{MCP_PATH}", flush=True)
    return exit_code


async def serve_stdio() -> None:
    fixture = EverythingServer()
    async with stdio_server() as (read_stream, write_stream):
        await fixture.server.run(read_stream, write_stream, fixture.server.create_initialization_options())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--transport", choices=("http", "stdio"), default="http")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3001, help="HTTP port; 0 picks a free one (default: 3001)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error", "critical"), default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        if args.transport == "stdio":
            anyio.run(serve_stdio)
            return 0
        return anyio.run(serve_http, args.host, args.port, args.log_level)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
