"""Scripted upstream MCP server for the gateway's integration tests.

A real upstream process built on the low-level ``mcp.server.Server`` of SDK 2.3.0.  It serves
both protocol eras (2025-11-25 handshake, 2026-07-28 stateless) on every transport the SDK
can carry them on, and is driven entirely by command-line options::

    python -m tests.support.scripted_server [options]     (or: python tests/support/scripted_server.py)

    --transport {http,sse,stdio}  http: streamable HTTP at /mcp (both eras on one route, routed by
                                  the MCP-Protocol-Version header); sse: the 2024-11-05 HTTP+SSE
                                  transport (GET /sse + POST /messages/?session_id=...); stdio:
                                  newline-delimited JSON-RPC.  sse and stdio run the SDK's dual-era
                                  loop: the first request fixes the era of the connection.
                                  Default http.
    --host HOST --port N          HTTP bind address (default 127.0.0.1:0; port 0 picks a free port).
    --name NAME                   server name; used in serverInfo, descriptions, echoes, resource URIs
                                  (default "scripted").
    --tools N                     generated echo tools tool_0..tool_{N-1} (default 3).
    --tool-name X                 add an echo tool with exactly this name (repeatable).
    --no-special-tools            omit the special tools listed below.
    --prompts N                   prompts prompt_0..prompt_{N-1} (default 0).
    --resources N                 resources NAME://item/{i}, text/plain (default 0).
    --templates N                 resource templates NAME://tpl{i}/{id} (default 0).
    --latency S                   prompts/get, resources/read, resources/subscribe and completion/complete
                                  answer after S
                                  seconds (default 0): calls that stay in flight, for concurrency tests.
    --page-size K                 paginate tools/prompts/resources/templates lists, K per page,
                                  with opaque cursors (default: everything on one page).
    --record FILE                 append one JSON line per received message to FILE (flushed).
    --require-bearer              http only: answer 401 to any request without `Authorization: Bearer`
                                  (the recorded ``headers`` show which credential arrived).
    --json-response               http only: answer POSTs with application/json instead of SSE.
                                  Progress and logs related to a call are then dropped by the SDK,
                                  and legacy-era sample/elicit/roots return an isError result (no
                                  back-channel); 2026-07-28 MRTR is unaffected.

Once listening it prints ``READY <url>`` on stdout (``READY stdio`` on stderr for stdio).

Tools.  Echo tools (generated, ``--tool-name`` and ``dyn_<n>``) return a text JSON block
``{"server", "tool", "arguments"}``.  Special tools:

    sleep {seconds}     sleeps; reports progress every 0.1 s when the call has a progressToken;
                        cancellable (a cancellation is recorded as an ``event: cancelled`` line).
    crash               records the call, then ``os._exit(1)``; no answer is ever sent.
    hang                never returns (cancellable, recorded like sleep).
    add_tool {related}  adds ``dyn_<n>`` (n = 0, 1, ...) and announces it: every legacy session
                        gets ``notifications/tools/list_changed`` on its standalone channel (the
                        GET stream on streamable HTTP; with ``related: true`` the calling session
                        gets it on the call's own POST stream instead), and every 2026-07-28
                        ``subscriptions/listen`` stream gets it too.
    log {message}       sends ``notifications/message`` (level info, logger NAME) on the call's
                        stream, then returns.  2026-07-28: only if the request opted in with
                        ``_meta`` logLevel (the SDK drops it otherwise).
    sample {prompt}     asks the client ``sampling/createMessage``; returns the text it got back.
    elicit {message}    asks ``elicitation/create`` (form: {name: string}); returns the ElicitResult
                        as JSON text.
    roots               asks ``roots/list``; returns the ListRootsResult as JSON text.
    storm {count}       sends ``notifications/tools/list_changed`` ``count`` times to every legacy session
                        and listen stream, as fast as it can.
    touch {uri}         sends ``notifications/resources/updated`` for ``uri`` to every legacy session that
                        subscribed to it (``resources/subscribe``) and to every 2026-07-28 listen
                        stream watching it.
    whoami              HTTP: ``{"transport", "headers"}`` of the request that carried the call;
                        stdio: ``{"transport": "stdio", "env"}`` with every ``MCP_TEST_*`` variable.
    error               returns a CallToolResult with ``isError: true``.

For sample/elicit/roots the era decides the mechanism: 2025-11-25 sends a real server-to-client
request related to the call (on the POST's SSE stream over streamable HTTP); 2026-07-28 returns
an MRTR ``InputRequiredResult`` (``resultType: input_required``, key = the tool name) and finishes
on the client's retry carrying ``inputResponses`` plus the echoed ``requestState``.  A client that
did not declare the needed capability gets -32021 (2026-07-28) or an ``isError`` result (legacy).

Record lines: ``{"ts", "kind": "request"|"notification", "method", "id", "era": "legacy"|"modern",
"protocolVersion", "name"?, "uri"?, "arguments"?, "cursor"?, "inputResponses"? (keys),
"requestState"?, "progressToken"?, "headers"? (all HTTP headers, lower-case)}``, written before
the message is handled; plus ``{"kind": "event", "event": "cancelled", "tool", "id"}`` when a
sleep/hang call is cancelled and ``{"kind": "event", "event": "crash", "id"}`` just before exiting.

Prompts return one user message whose text is ``{"server", "prompt", "arguments"}`` JSON; resources
and template-matched URIs read as ``text/plain``; unknown ones give -32602 (2026-07-28) or -32002
(legacy).  Cursors are opaque base64url tokens, bound to one list kind; a bad one gives -32602.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import mcp_types as types
import uvicorn
from mcp.server import Server
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.jsonrpc import INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

Ctx = ServerRequestContext[Any, Any]
_ItemT = TypeVar("_ItemT")
_AnswerT = TypeVar("_AnswerT", types.CreateMessageResult, types.ElicitResult, types.ListRootsResult)
ToolOutcome = types.CallToolResult | types.InputRequiredResult

SPECIAL_TOOLS = (
    "sleep",
    "crash",
    "hang",
    "add_tool",
    "log",
    "sample",
    "elicit",
    "roots",
    "whoami",
    "error",
    "touch",
    "storm",
)
# Legacy (pre-2026) "resource not found"; 2026-07-28 retired it in favour of -32602.
LEGACY_RESOURCE_NOT_FOUND = -32002
PROGRESS_INTERVAL = 0.1

_ECHO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "description": "Anything; echoed back."}},
    "additionalProperties": True,
}
_SPECIAL_SCHEMAS: dict[str, dict[str, Any]] = {
    "sleep": {
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0}},
        "required": ["seconds"],
    },
    "add_tool": {"type": "object", "properties": {"related": {"type": "boolean"}}},
    "log": {"type": "object", "properties": {"message": {"type": "string"}}},
    "sample": {"type": "object", "properties": {"prompt": {"type": "string"}}},
    "elicit": {"type": "object", "properties": {"message": {"type": "string"}}},
}
_SPECIAL_DESCRIPTIONS = {
    "touch": "announces that resource `uri` changed (notifications/resources/updated to its subscribers)",
    "sleep": "sleeps `seconds`, reporting progress every 0.1 s",
    "crash": "kills the server process mid-call",
    "hang": "never returns",
    "add_tool": "adds a dyn_<n> tool and announces tools/list_changed",
    "log": "sends notifications/message at level info",
    "sample": "asks the client for sampling/createMessage",
    "elicit": "asks the client for elicitation/create (form)",
    "roots": "asks the client for roots/list",
    "whoami": "returns the request headers (HTTP) or MCP_TEST_* env vars (stdio)",
    "error": "returns an isError result",
    "storm": "announces tools/list_changed `count` times in a row, to every session and listen stream",
}
_ELICIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}


@dataclass(frozen=True)
class Options:
    transport: Literal["http", "sse", "stdio"]
    host: str
    port: int
    name: str
    tools: int
    tool_names: tuple[str, ...]
    special_tools: bool
    prompts: int
    resources: int
    templates: int
    page_size: int | None
    latency: float
    record: str | None
    json_response: bool
    require_bearer: bool
    otlp: str | None = None


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Scripted upstream MCP server for gateway tests.")
    parser.add_argument("--transport", choices=("http", "sse", "stdio"), default="http")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="scripted")
    parser.add_argument("--tools", type=int, default=3)
    parser.add_argument("--tool-name", action="append", default=[], dest="tool_names")
    parser.add_argument("--no-special-tools", action="store_false", dest="special_tools")
    parser.add_argument("--prompts", type=int, default=0)
    parser.add_argument("--resources", type=int, default=0)
    parser.add_argument("--templates", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--record", default=None)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--require-bearer", action="store_true")
    parser.add_argument("--otlp", default=None, help="send the SDK's own OTel spans to this OTLP/HTTP traces URL")
    ns = parser.parse_args(argv)
    if ns.page_size is not None and ns.page_size < 1:
        parser.error("--page-size must be >= 1")
    return Options(
        transport=ns.transport,
        host=ns.host,
        port=ns.port,
        name=ns.name,
        tools=ns.tools,
        tool_names=tuple(ns.tool_names),
        special_tools=ns.special_tools,
        prompts=ns.prompts,
        resources=ns.resources,
        templates=ns.templates,
        page_size=ns.page_size,
        latency=ns.latency,
        record=ns.record,
        json_response=ns.json_response,
        require_bearer=ns.require_bearer,
        otlp=ns.otlp,
    )


# --------------------------------------------------------------------------------------------------
# Recording


class Recorder:
    """Appends JSON lines to a file, flushed per line, safe to call from any task."""

    def __init__(self, path: str | None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 - process lifetime
        self._lock = threading.Lock()

    def write(self, entry: Mapping[str, Any]) -> None:
        if self._file is None:
            return
        line = json.dumps({"ts": time.time(), **entry}, default=str, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


def _era(version: str) -> str:
    return "modern" if version in MODERN_PROTOCOL_VERSIONS else "legacy"


def _http_headers(ctx: Ctx) -> dict[str, str] | None:
    request = ctx.request
    if isinstance(request, Request):
        return {k.lower(): v for k, v in request.headers.items()}
    return None


# --------------------------------------------------------------------------------------------------
# Pagination


def _encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, _, offset = raw.partition(":")
        if got_kind != kind:
            raise ValueError(kind)
        value = int(offset)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise MCPError(INVALID_PARAMS, f"Invalid cursor for {kind}") from None
    if value < 0:
        raise MCPError(INVALID_PARAMS, f"Invalid cursor for {kind}")
    return value


def _page(items: list[_ItemT], kind: str, cursor: str | None, page_size: int | None) -> tuple[list[_ItemT], str | None]:
    start = _decode_cursor(kind, cursor) if cursor else 0
    if start > len(items):
        raise MCPError(INVALID_PARAMS, f"Invalid cursor for {kind}")
    if page_size is None:
        return items[start:], None
    end = start + page_size
    return items[start:end], (_encode_cursor(kind, end) if end < len(items) else None)


# --------------------------------------------------------------------------------------------------
# The server


class _Server(Server[Any]):
    """`Server` whose handshake-era capabilities advertise `listChanged`.

    The streamable-HTTP manager serves legacy sessions with
    `create_initialization_options()` and no `NotificationOptions`, which would
    advertise `listChanged: false`; this default flips it for every transport.
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options
            or NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class ScriptedServer:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.name = opts.name
        self.recorder = Recorder(opts.record)
        self.bus = InMemorySubscriptionBus()
        self.legacy_sessions: dict[int, ServerSession] = {}
        self.resource_subscribers: dict[str, dict[int, ServerSession]] = {}  # legacy resources/subscribe
        self.dyn_count = 0
        self.tools: dict[str, types.Tool] = {}
        for i in range(opts.tools):
            self._add_echo_tool(f"tool_{i}")
        for extra in opts.tool_names:
            self._add_echo_tool(extra)
        if opts.special_tools:
            for special in SPECIAL_TOOLS:
                self.tools.setdefault(
                    special,
                    types.Tool(
                        name=special,
                        description=f"[{self.name}] {_SPECIAL_DESCRIPTIONS[special]}",
                        input_schema=_SPECIAL_SCHEMAS.get(special, {"type": "object"}),
                    ),
                )
        self.prompts = [
            types.Prompt(
                name=f"prompt_{i}",
                description=f"[{self.name}] prompt {i}",
                arguments=[types.PromptArgument(name="topic", description="optional topic", required=False)],
            )
            for i in range(opts.prompts)
        ]
        self.resources = [
            types.Resource(
                uri=f"{self.name}://item/{i}",
                name=f"item_{i}",
                description=f"[{self.name}] resource {i}",
                mime_type="text/plain",
            )
            for i in range(opts.resources)
        ]
        self.templates = [
            types.ResourceTemplate(
                uri_template=f"{self.name}://tpl{i}/{{id}}",
                name=f"tpl_{i}",
                description=f"[{self.name}] template {i}",
                mime_type="text/plain",
            )
            for i in range(opts.templates)
        ]
        self.special_handlers: dict[str, Callable[[Ctx, dict[str, Any]], Awaitable[ToolOutcome]]] = {
            "sleep": self._tool_sleep,
            "crash": self._tool_crash,
            "hang": self._tool_hang,
            "add_tool": self._tool_add_tool,
            "log": self._tool_log,
            "sample": self._tool_sample,
            "elicit": self._tool_elicit,
            "roots": self._tool_roots,
            "whoami": self._tool_whoami,
            "error": self._tool_error,
            "touch": self._tool_touch,
            "storm": self._tool_storm,
        }
        self.server = self._build_server()

    # -- construction -------------------------------------------------------------------------------

    def _add_echo_tool(self, name: str) -> None:
        self.tools.setdefault(
            name,
            types.Tool(name=name, description=f"[{self.name}] echoes its arguments", input_schema=_ECHO_SCHEMA),
        )

    def _build_server(self) -> _Server:
        server = _Server(
            self.name,
            version="1.0.0",
            instructions=f"Scripted test server {self.name}",
            get_tool_input_schema=self._tool_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_completion=self._complete,
            on_subscriptions_listen=ListenHandler(self.bus),
        )
        # Registered directly: the constructor kwarg emits an MCPDeprecationWarning.
        server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, self._subscribe)
        server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, self._unsubscribe)
        server.middleware.append(self._record_middleware)
        return server

    def _tool_schema(self, name: str) -> Mapping[str, Any] | None:
        # Keeps the 2026 Mcp-Param-* check from walking tools/list (which the recorder would see).
        tool = self.tools.get(name)
        return tool.input_schema if tool is not None else None

    # -- recording ------------------------------------------------------------------------------------

    async def _record_middleware(self, ctx: Ctx, call_next: CallNext) -> HandlerResult:
        params = ctx.params or {}
        version = ctx.protocol_version
        if ctx.method == "initialize" and isinstance(params.get("protocolVersion"), str):
            version = params["protocolVersion"]
        entry: dict[str, Any] = {
            "kind": "request" if ctx.request_id is not None else "notification",
            "method": ctx.method,
            "id": ctx.request_id,
            "era": _era(version),
            "protocolVersion": version,
        }
        for key in ("name", "uri", "ref", "arguments", "cursor", "requestState"):
            if key in params:
                entry[key] = params[key]
        if isinstance(params.get("inputResponses"), Mapping):
            entry["inputResponses"] = sorted(params["inputResponses"])
        meta = params.get("_meta")
        if isinstance(meta, Mapping) and "progressToken" in meta:
            entry["progressToken"] = meta["progressToken"]
        headers = _http_headers(ctx)
        if headers is not None:
            entry["headers"] = headers
        self.recorder.write(entry)
        if ctx.method == "notifications/initialized":
            self._remember_legacy_session(ctx.session)
        return await call_next(ctx)

    def _remember_legacy_session(self, session: ServerSession) -> None:
        """Keep a handle on a legacy connection (until it closes) so add_tool can reach all of them."""
        connection = _connection_of(session)
        key = id(connection)
        self.legacy_sessions[key] = session
        connection.exit_stack.callback(self.legacy_sessions.pop, key, None)

    # -- lists ----------------------------------------------------------------------------------------

    async def _list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        page, nxt = _page(list(self.tools.values()), "tools", params.cursor if params else None, self.opts.page_size)
        return types.ListToolsResult(tools=page, next_cursor=nxt)

    async def _list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        page, nxt = _page(self.prompts, "prompts", params.cursor if params else None, self.opts.page_size)
        return types.ListPromptsResult(prompts=page, next_cursor=nxt)

    async def _list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        page, nxt = _page(self.resources, "resources", params.cursor if params else None, self.opts.page_size)
        return types.ListResourcesResult(resources=page, next_cursor=nxt)

    async def _list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        page, nxt = _page(self.templates, "templates", params.cursor if params else None, self.opts.page_size)
        return types.ListResourceTemplatesResult(resource_templates=page, next_cursor=nxt)

    # -- prompts / resources / logging ----------------------------------------------------------------

    async def _get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        await anyio.sleep(self.opts.latency)
        if not any(p.name == params.name for p in self.prompts):
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}")
        text = json.dumps({"server": self.name, "prompt": params.name, "arguments": params.arguments or {}})
        return types.GetPromptResult(
            description=f"[{self.name}] {params.name}",
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )

    async def _complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        """Completions: two values that start with what was typed, for any prompt argument or template variable."""
        await anyio.sleep(self.opts.latency)
        typed = params.argument.value
        return types.CompleteResult(
            completion=types.Completion(values=[f"{typed}alpha", f"{typed}beta"], total=2, has_more=False)
        )

    async def _read_resource(self, ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        await anyio.sleep(self.opts.latency)
        uri = params.uri
        known = any(r.uri == uri for r in self.resources) or any(
            uri.startswith(f"{self.name}://tpl{i}/") and len(uri) > len(f"{self.name}://tpl{i}/")
            for i in range(len(self.templates))
        )
        if not known:
            code = INVALID_PARAMS if _era(ctx.protocol_version) == "modern" else LEGACY_RESOURCE_NOT_FOUND
            raise MCPError(code, f"Resource not found: {uri}", {"uri": uri})
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"{self.name} content of {uri}")]
        )

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        await anyio.sleep(self.opts.latency)
        self.resource_subscribers.setdefault(params.uri, {})[id(_connection_of(ctx.session))] = ctx.session
        return types.EmptyResult()

    async def _unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.resource_subscribers.get(params.uri, {}).pop(id(_connection_of(ctx.session)), None)
        return types.EmptyResult()

    # -- tools ----------------------------------------------------------------------------------------

    def _text(self, payload: Any, *, is_error: bool = False) -> types.CallToolResult:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=is_error)

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> ToolOutcome:
        name = params.name
        args = params.arguments or {}
        if name not in self.tools:
            raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}")
        handler = self.special_handlers.get(name) if self.opts.special_tools else None
        if handler is None:
            return self._text({"server": self.name, "tool": name, "arguments": args})
        return await handler(ctx, args)

    async def _tool_sleep(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        seconds = float(args.get("seconds", 1.0))
        deadline = anyio.current_time() + seconds
        step = 0
        try:
            while (remaining := deadline - anyio.current_time()) > 0:
                await anyio.sleep(min(PROGRESS_INTERVAL, remaining))
                step += 1
                # A no-op unless the request carried a progressToken.
                await ctx.session.report_progress(
                    min(step * PROGRESS_INTERVAL, seconds), seconds, f"{self.name} sleeping"
                )
        except anyio.get_cancelled_exc_class():
            self.recorder.write({"kind": "event", "event": "cancelled", "tool": "sleep", "id": ctx.request_id})
            raise
        return self._text({"server": self.name, "tool": "sleep", "slept": seconds})

    async def _tool_crash(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        self.recorder.write({"kind": "event", "event": "crash", "id": ctx.request_id})
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    async def _tool_hang(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.recorder.write({"kind": "event", "event": "cancelled", "tool": "hang", "id": ctx.request_id})
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _tool_add_tool(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        new_name = f"dyn_{self.dyn_count}"
        self.dyn_count += 1
        self._add_echo_tool(new_name)
        related = bool(args.get("related", False)) and _era(ctx.protocol_version) == "legacy"
        notified = 0
        if related:
            # Rides the calling POST's SSE stream (streamable HTTP) instead of the GET stream.
            await ctx.session.send_notification(types.ToolListChangedNotification(), related_request_id=ctx.request_id)
            notified += 1
        for session in list(self.legacy_sessions.values()):
            if related and _connection_of(session) is _connection_of(ctx.session):
                continue
            # Standalone channel: the GET stream on streamable HTTP (dropped if none is open).
            await session.send_tool_list_changed()
            notified += 1
        # 2026-07-28 clients hear about it on their subscriptions/listen streams.
        await self.bus.publish(ToolsListChanged())
        return self._text({"server": self.name, "tool": "add_tool", "added": new_name, "notified": notified})

    async def _tool_storm(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        count = int(args.get("count", 100))
        for _ in range(count):
            for session in list(self.legacy_sessions.values()):
                await session.send_tool_list_changed()
            await self.bus.publish(ToolsListChanged())
        return self._text({"server": self.name, "tool": "storm", "sent": count})

    async def _tool_touch(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        uri = str(args.get("uri", ""))
        notified = 0
        for session in list(self.resource_subscribers.get(uri, {}).values()):
            await session.send_resource_updated(uri)
            notified += 1
        await self.bus.publish(ResourceUpdated(uri=uri))  # 2026-07-28 listens that watch it
        return self._text({"server": self.name, "tool": "touch", "uri": uri, "notified": notified})

    async def _tool_log(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        message = str(args.get("message", f"{self.name} log"))
        # Deprecated (SEP-2577) but still served in both eras; on 2026-07-28 the SDK sends it only
        # when the request's _meta opted in with a logLevel, always on the call's own stream.
        await ctx.session.send_log_message(
            "info", {"server": self.name, "message": message}, logger=self.name, related_request_id=ctx.request_id
        )
        return self._text({"server": self.name, "tool": "log", "logged": message})

    async def _tool_whoami(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        headers = _http_headers(ctx)
        if headers is not None:
            return self._text({"server": self.name, "transport": self.opts.transport, "headers": headers})
        env = {k: v for k, v in os.environ.items() if k.startswith("MCP_TEST_")}
        return self._text({"server": self.name, "transport": "stdio", "env": env})

    async def _tool_error(self, ctx: Ctx, args: dict[str, Any]) -> types.CallToolResult:
        return self._text(f"{self.name}: error requested", is_error=True)

    # -- client-facing requests: legacy push or 2026 MRTR ---------------------------------------------

    async def _ask(
        self,
        ctx: Ctx,
        key: str,
        request: types.CreateMessageRequest | types.ElicitRequest | types.ListRootsRequest,
        capability: types.ClientCapabilities,
        answer_type: type[_AnswerT],
    ) -> _AnswerT | ToolOutcome:
        """One answer from the client, or the tool's final outcome (MRTR round, error result).

        2026-07-28: MRTR - the first round returns `InputRequiredResult` keyed by `key`; the retry
        carries `inputResponses[key]` plus the echoed `requestState`.  Handshake era: a real
        server-to-client request related to the call (rides the call's POST SSE stream).
        """
        wire_capability = capability.model_dump(by_alias=True, mode="json", exclude_none=True)
        cap_name = next(iter(wire_capability))
        if _era(ctx.protocol_version) == "modern":
            raw = ctx.params or {}
            responses = raw.get("inputResponses")
            if isinstance(responses, Mapping) and key in responses:
                if raw.get("requestState") != _request_state(key):
                    raise MCPError(INVALID_PARAMS, "requestState does not match this call")
                return answer_type.model_validate(responses[key], by_name=False)
            if not ctx.session.check_client_capability(capability):
                raise MCPError(
                    MISSING_REQUIRED_CLIENT_CAPABILITY,
                    f"Client did not declare the {cap_name} capability",
                    {"requiredCapabilities": wire_capability},
                )
            return types.InputRequiredResult(input_requests={key: request}, request_state=_request_state(key))
        if not ctx.session.check_client_capability(capability):
            return self._text(f"{self.name}: client did not declare the {cap_name} capability", is_error=True)
        try:
            return await ctx.session.send_request(
                request, answer_type, metadata=ServerMessageMetadata(related_request_id=ctx.request_id)
            )
        except MCPError as exc:
            return self._text(f"{self.name}: client answered {key} with error {exc.code}: {exc.message}", is_error=True)

    async def _tool_sample(self, ctx: Ctx, args: dict[str, Any]) -> ToolOutcome:
        prompt = str(args.get("prompt", f"hello from {self.name}"))
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(
                messages=[types.SamplingMessage(role="user", content=types.TextContent(text=prompt))],
                max_tokens=64,
            )
        )
        capability = types.ClientCapabilities(sampling=types.SamplingCapability())
        got = await self._ask(ctx, "sample", request, capability, types.CreateMessageResult)
        if isinstance(got, ToolOutcome):
            return got
        content = got.content
        if isinstance(content, types.TextContent):
            return self._text(content.text)
        return self._text(content.model_dump(by_alias=True, mode="json", exclude_none=True))

    async def _tool_elicit(self, ctx: Ctx, args: dict[str, Any]) -> ToolOutcome:
        message = str(args.get("message", f"{self.name} needs your name"))
        request = types.ElicitRequest(
            params=types.ElicitRequestFormParams(message=message, requested_schema=_ELICIT_SCHEMA)
        )
        capability = types.ClientCapabilities(elicitation=types.ElicitationCapability())
        got = await self._ask(ctx, "elicit", request, capability, types.ElicitResult)
        if isinstance(got, ToolOutcome):
            return got
        return self._text(got.model_dump(by_alias=True, mode="json", exclude_none=True))

    async def _tool_roots(self, ctx: Ctx, args: dict[str, Any]) -> ToolOutcome:
        capability = types.ClientCapabilities(roots=types.RootsCapability())
        got = await self._ask(ctx, "roots", types.ListRootsRequest(), capability, types.ListRootsResult)
        if isinstance(got, ToolOutcome):
            return got
        return self._text(got.model_dump(by_alias=True, mode="json", exclude_none=True))


def _request_state(tool: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"tool": tool, "round": 1}).encode()).decode()


def _connection_of(session: ServerSession) -> Connection:
    # ServerRequestContext exposes no Connection in SDK 2.3.0; the session holds it privately.
    return session._connection  # pyright: ignore[reportPrivateUsage]


# --------------------------------------------------------------------------------------------------
# Transports


def _security(host: str) -> TransportSecuritySettings | None:
    if host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def build_http_app(scripted: ScriptedServer) -> Any:
    app = scripted.server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=scripted.opts.json_response,
        host=scripted.opts.host,
        transport_security=_security(scripted.opts.host),
    )
    return _BearerRequired(app) if scripted.opts.require_bearer else app


class _BearerRequired:
    """--require-bearer: an upstream that wants a credential of its own on every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = dict(scope["headers"]).get(b"authorization", b"")
            if not value.lower().startswith(b"bearer ") or len(value) <= 7:
                body = b'{"error":"invalid_token"}'
                headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def build_sse_app(scripted: ScriptedServer) -> Starlette:
    sse = SseServerTransport("/messages/", security_settings=_security(scripted.opts.host))
    server = scripted.server

    async def handle_sse(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await server.run(read, write, server.create_initialization_options())
        return Response()

    async def handle_messages(scope: Scope, receive: Receive, send: Send) -> None:
        await sse.handle_post_message(scope, receive, send)

    return Starlette(
        routes=[Route("/sse", endpoint=handle_sse, methods=["GET"]), Mount("/messages/", app=handle_messages)]
    )


async def serve_http(app: Starlette, opts: Options, path: str) -> None:
    family = socket.AF_INET6 if ":" in opts.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((opts.host, opts.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    userver = uvicorn.Server(config)

    async def announce() -> None:
        while not userver.started:
            await anyio.sleep(0.01)
        host = f"[{opts.host}]" if ":" in opts.host else opts.host
        print(f"READY http://{host}:{port}{path}", flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await userver.serve(sockets=[sock])
        tg.cancel_scope.cancel()


async def serve_stdio(scripted: ScriptedServer) -> None:
    server = scripted.server
    async with stdio_server() as (read, write):
        print("READY stdio", file=sys.stderr, flush=True)
        await server.run(read, write, server.create_initialization_options())


def _export_sdk_spans(url: str) -> None:
    """The mcp SDK (2.x) emits a SERVER span per request through the global tracer: send them to `url`."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "scripted-upstream"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)


async def amain(opts: Options) -> None:
    warnings.filterwarnings("ignore", message=".*deprecated as of 2026-07-28.*")
    if opts.otlp:
        _export_sdk_spans(opts.otlp)
    scripted = ScriptedServer(opts)
    if opts.transport == "stdio":
        await serve_stdio(scripted)
    elif opts.transport == "sse":
        await serve_http(build_sse_app(scripted), opts, "/sse")
    else:
        await serve_http(build_http_app(scripted), opts, "/mcp")


def main(argv: list[str] | None = None) -> None:
    anyio.run(amain, parse_args(argv))


if __name__ == "__main__":
    main()
