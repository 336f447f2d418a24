"""The HTTP application: `/mcp` (the lean MCP front), `/v1/*` (the LLM bridge), the health and metrics
endpoints and the OAuth resource metadata, over the gateway `assembly.build_gateway` builds."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from llm_bridge.front.app import BridgeApp

from .assembly import Gateway, build_gateway
from .auth.metadata import WELL_KNOWN, protected_resource_metadata
from .config import GatewayConfig, load_config
from .front.http import McpHttpFront
from .front.responses import send_error
from .front.security import OriginGuard
from .front.sessions import SessionRegistry
from .jsonrpc import INVALID_REQUEST, McpError
from .policy import PolicyError

log = logging.getLogger("mcp_gateway")

CONFIG_ENV = "MCP_GATEWAY_CONFIG"


class GatewayApp:
    """The ASGI application. `/mcp` goes straight to the front; everything else through Starlette."""

    def __init__(self, gateway: Gateway, *, port: int | None = None) -> None:
        self.gateway = gateway
        config = self.config = gateway.config
        server = config.server
        self.sessions = SessionRegistry(
            gateway.sealer,
            gateway.backend,
            server.session_idle_timeout,
            gateway.watches,
            server.max_sessions_per_caller,
        )
        bound_port = port if port is not None else server.port
        self.guard = OriginGuard.for_bind(server.host, bound_port, server.allowed_hosts, server.allowed_origins)
        self.front = McpHttpFront(
            gateway.pipeline,
            gateway.catalog,
            gateway.watches,
            self.sessions,
            gateway.gate,
            gateway.anonymous,
            gateway.access_log,
            lenient_version_header=server.lenient_version_header,
            max_streams_per_session=server.max_streams_per_session,
        )
        gateway.sync.on_change(self.front.listener)
        self.llm = BridgeApp(gateway.llm) if gateway.llm is not None else None
        self._mcp_path = server.path
        self._sweeper: asyncio.Task[None] | None = None
        self._routes = Starlette(
            routes=[
                Route("/healthz", self._healthz),
                Route("/readyz", self._readyz),
                Route("/metrics", self._metrics),
                # RFC 9728: the path-inserted document first, the root one for clients that try it.
                Route(WELL_KNOWN + server.path.rstrip("/"), self._resource_metadata),
                Route(WELL_KNOWN, self._resource_metadata),
            ],
            lifespan=self._lifespan,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            rejected = self.guard.check_request(scope["method"], dict(scope["headers"]))
            if rejected is not None:  # every route: /mcp, /v1/*, the health and metrics endpoints
                status, reason = rejected
                await send_error(send, status, None, McpError(INVALID_REQUEST, reason))
                return
        if scope["type"] == "http" and scope["path"] in (self._mcp_path, self._mcp_path + "/"):
            await self.front(scope, receive, send)
        elif self.llm is not None and scope["type"] == "http" and self.llm.serves(scope["path"]):
            await self.llm(scope, receive, send)
        else:
            await self._routes(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        gateway = self.gateway
        log.info("starting: %d upstream(s)", len(gateway.pool.handles))
        auth = self.config.auth
        if auth is not None and auth.issuers and not auth.resource and self.config.server.host not in _LOOPBACK:
            log.warning(
                "auth.resource is not set: tokens must name %s as their audience; behind a proxy or a public "
                "name, set auth.resource to the URL clients use",
                gateway.resource,
            )
        try:
            await gateway.start()
        except PolicyError as exc:
            log.error("the policy directory is invalid:\n%s", exc)
            raise
        if auth is not None and gateway.authenticator is not None:
            log.info(
                "auth: resource %s, %d issuer(s), %d API key(s)",
                gateway.resource,
                len(auth.issuers),
                len(auth.api_keys),
            )
        self._sweeper = asyncio.create_task(self._sweep_sessions())
        # Everything allocated so far lives as long as the process: move it out of the collector's
        # reach so full collections stay short (they showed as ~50 ms p99 stalls under load).
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        self.front.stop_streams()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.sessions.close_all()
        await self.gateway.stop()
        log.info("stopped")

    def begin_drain(self) -> None:
        """SIGTERM: refuse new calls and end long-lived streams; calls in flight finish."""
        self.front.stop_streams()

    async def _sweep_sessions(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.config.server.session_idle_timeout / 2))
            expired = self.sessions.expire_idle()
            if expired:
                log.info("expired %d idle session(s)", expired)

    async def _resource_metadata(self, _request: Request) -> JSONResponse:
        if self.config.auth is None:
            return JSONResponse({"error": "this gateway does not use OAuth"}, status_code=404)
        return JSONResponse(protected_resource_metadata(self.config.auth, self.gateway.resource))

    def _admin(self, request: Request) -> bool:
        """May this request see the operator's view (metrics, readiness details)? Always, without a token."""
        token = self.config.server.admin_token
        if not token:
            return True
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())

    async def _metrics(self, request: Request) -> Response:
        if not self._admin(request):
            return PlainTextResponse("metrics need the admin token (server.admin_token)", status_code=401)
        metrics = self.gateway.telemetry.metrics
        if metrics is None or not self.config.telemetry.metrics.prometheus:
            return PlainTextResponse("metrics are off (telemetry.metrics.prometheus: false)", status_code=404)
        body, content_type = await asyncio.to_thread(metrics.render)  # a big scrape must not stall calls
        return Response(body, media_type=content_type)

    async def _healthz(self, _request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def _readyz(self, request: Request) -> JSONResponse:
        gateway = self.gateway
        upstreams = {}
        for name, handle in gateway.pool.handles.items():
            health = handle.health
            upstreams[name] = {
                "state": health.state,
                "transport": handle.config.transport,
                "protocol": health.protocol_version,
                "error": health.error,
                "since": round(health.since, 3),
                "connects": health.connects,
            }
        snapshot = gateway.catalog.snapshot
        ready = not self.front.draining.is_set() and (
            not upstreams or any(u["state"] == "ready" for u in upstreams.values())
        )
        status = 200 if ready else 503
        if not self._admin(request):  # a probe needs no more than this; the details are the operator's
            return JSONResponse({"ready": ready}, status_code=status)
        body = {
            "ready": ready,
            "upstreams": upstreams,
            "catalog": {kind: len(items) for kind, items in snapshot.lists.items()},
            "collisions": [str(c) for c in snapshot.collisions],
            "sessions": len(self.sessions),
            "state": {"backend": self.config.state.backend, "process": gateway.backend.process_id},
            "parked_calls": len(gateway.mrtr),
        }
        if gateway.reloader is not None:
            body["policy"] = gateway.reloader.status
        return JSONResponse(body, status_code=status)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(config: GatewayConfig, *, port: int | None = None) -> GatewayApp:
    return GatewayApp(build_gateway(config, port=port), port=port)


def create_app_from_env() -> GatewayApp:
    """Factory for `--workers` processes: the CLI passes the config path (and port) in the environment."""
    path = os.environ[CONFIG_ENV]
    port = os.environ.get("MCP_GATEWAY_PORT")
    return create_app(load_config(path), port=int(port) if port else None)
