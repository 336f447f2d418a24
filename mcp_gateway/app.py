"""Assembly: one ASGI app serving `/mcp` (lean path), health endpoints, and the gateway's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from llm_bridge.bridge import Bridge
from llm_bridge.front.app import BridgeApp

from .auth import Authenticator
from .auth.metadata import WELL_KNOWN, canonical_resource, protected_resource_metadata
from .config import GatewayConfig, load_config
from .core.gateway import Gateway
from .front.auth_gate import AuthGate
from .front.http import ANONYMOUS, McpHttpFront
from .front.security import OriginGuard
from .front.sessions import SessionRegistry
from .llm import GatewayHooks
from .llm.sampling import Sampler
from .policy import PolicyEngine, PolicyError
from .policy.reloader import PolicyReloader
from .state import BackendUnavailable, Sealer, create_backend
from .telemetry.access_log import AccessLog, OtlpAccessLog
from .telemetry.hub import Telemetry

log = logging.getLogger("mcp_gateway")

CONFIG_ENV = "MCP_GATEWAY_CONFIG"
SECRET_ENV = "MCP_GATEWAY_SESSION_SECRET"


class GatewayApp:
    """The ASGI application. `/mcp` goes straight to the front; everything else through Starlette."""

    def __init__(self, config: GatewayConfig, *, port: int | None = None) -> None:
        self.config = config
        server = config.server
        self.backend = create_backend(config.state.backend, config.state.redis_url, config.state.key_prefix)
        sealer = Sealer.from_secrets(sealing_secrets(config))
        self.gateway = Gateway(config, self.backend, sealer)
        self.sessions = SessionRegistry(sealer, self.backend, server.session_idle_timeout, self.gateway.watches)
        bound_port = port if port is not None else server.port
        guard = OriginGuard.for_bind(server.host, bound_port, server.allowed_hosts, server.allowed_origins)
        self.resource = canonical_resource(config.auth, server.host, bound_port, server.path)
        self.authenticator = Authenticator(config.auth, self.resource) if config.auth is not None else None
        gate = AuthGate(self.authenticator, self.resource) if self.authenticator is not None else None
        self.front = McpHttpFront(self.gateway, self.sessions, guard, server.lenient_version_header, gate)
        self.telemetry = Telemetry.from_config(config.telemetry, lambda: self.gateway.policy)
        self.gateway.telemetry = self.telemetry
        self.llm: BridgeApp | None = None
        if config.llm is not None:
            self.llm_hooks = GatewayHooks(self.gateway.access, gate, ANONYMOUS)
            self.llm_hooks.telemetry = self.telemetry
            self.llm = BridgeApp(Bridge(config.llm, self.llm_hooks))
            self.llm.bridge.record_responses = self.telemetry.tracing.enabled  # LLM spans hold the answer
            if config.llm.sampling_model:
                sampler = Sampler(self.llm.bridge, config.llm.sampling_model)
                self.gateway.sampler = self.gateway.bridge.sampler = sampler
        self._mcp_path = server.path
        self._started = time.time()
        self._sweeper: asyncio.Task[None] | None = None
        self.policies: PolicyReloader | None = None
        if config.policies is not None:
            directory = Path(config.base_dir or ".") / config.policies.dir
            self.policies = PolicyReloader(directory, self._install_policy, self._policy_loaded)
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
        log.info("starting: %d upstream(s)", len(self.gateway.pool.handles))
        try:
            await self.backend.start()
        except BackendUnavailable as exc:
            log.error("state backend unavailable: %s (state.backend: %s)", exc, self.config.state.backend)
            raise
        if self.authenticator is not None:
            auth = self.config.auth
            assert auth is not None
            if auth.issuers and not auth.resource and self.config.server.host not in ("127.0.0.1", "localhost", "::1"):
                log.warning(
                    "auth.resource is not set: tokens must name %s as their audience; behind a proxy or a public "
                    "name, set auth.resource to the URL clients use",
                    self.resource,
                )
            await self.authenticator.start()
            log.info(
                "auth: resource %s, %d issuer(s), %d API key(s)",
                self.resource,
                len(self.config.auth.issuers),
                len(self.config.auth.api_keys),
            )  # type: ignore[union-attr]
        if self.config.telemetry.access_log:
            path = self.config.telemetry.access_log
            tracing = self.config.telemetry.tracing
            if path == "otlp":
                headers = dict(tracing.headers) or None
                self.gateway.access_log = OtlpAccessLog(tracing.endpoint, headers, tracing.service_name)  # type: ignore[assignment]
            else:
                if path != "-":
                    path = str(Path(self.config.base_dir or ".") / path)
                self.gateway.access_log = AccessLog(path)
            await self.gateway.access_log.start()
            if self.llm is not None:
                self.llm_hooks.access_log = self.gateway.access_log
        if self.policies is not None:
            try:
                await self.policies.load_first()
            except PolicyError as exc:
                log.error("the policy directory %s is invalid:\n%s", self.policies.directory, exc)
                raise
            log.info("policy: %d rule(s) from %s", len(self.gateway.policy or ()), self.policies.directory)
            if self.config.policies is not None and self.config.policies.reload:
                self.policies.watch()
        await self.gateway.start()
        if self.llm is not None:
            await self.llm.bridge.start()
        snapshot = self.gateway.snapshot
        log.info(
            "catalog: %d tools, %d prompts, %d resources, %d resource templates",
            len(snapshot.lists["tools"]),
            len(snapshot.lists["prompts"]),
            len(snapshot.lists["resources"]),
            len(snapshot.lists["resourceTemplates"]),
        )
        self._sweeper = asyncio.create_task(self._sweep_sessions())
        self.telemetry.tracing.start_export()
        # Everything allocated so far lives as long as the process: move it out of the collector's
        # reach so full collections stay short (they showed as ~50 ms p99 stalls under load).
        gc.collect()
        gc.freeze()

    def _policy_loaded(self, ok: bool) -> None:
        if self.telemetry.metrics is not None:
            self.telemetry.metrics.policy_reload(ok)

    async def _install_policy(self, engine: PolicyEngine) -> None:
        replacing = self.gateway.policy is not None
        self.gateway.policy = engine
        if replacing:
            # What clients may see changed: have them list again.
            await self.gateway.announce_all_changed()

    async def shutdown(self) -> None:
        if self.policies is not None:
            await self.policies.stop()
        self.front.stop_streams()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.sessions.close_all()
        await self.gateway.stop()
        if self.llm is not None:
            await self.llm.bridge.stop()
        if self.gateway.access_log is not None:
            await self.gateway.access_log.stop()
        await self.backend.stop()
        if self.authenticator is not None:
            await self.authenticator.stop()
        self.telemetry.shutdown()
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
        return JSONResponse(protected_resource_metadata(self.config.auth, self.resource))

    async def _metrics(self, _request: Request) -> Response:
        metrics = self.telemetry.metrics
        if metrics is None or not self.config.telemetry.metrics.prometheus:
            return PlainTextResponse("metrics are off (telemetry.metrics.prometheus: false)", status_code=404)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def _healthz(self, _request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def _readyz(self, _request: Request) -> JSONResponse:
        upstreams = {}
        for name, handle in self.gateway.pool.handles.items():
            health = handle.health
            upstreams[name] = {
                "state": health.state,
                "transport": handle.config.transport,
                "protocol": health.protocol_version,
                "error": health.error,
                "since": round(health.since, 3),
                "connects": health.connects,
            }
        snapshot = self.gateway.snapshot
        ready = not self.front.draining.is_set() and (
            not upstreams or any(u["state"] == "ready" for u in upstreams.values())
        )
        body = {
            "ready": ready,
            "upstreams": upstreams,
            "catalog": {kind: len(items) for kind, items in snapshot.lists.items()},
            "collisions": [str(c) for c in snapshot.collisions],
            "sessions": len(self.sessions),
            "state": {"backend": self.config.state.backend, "process": self.backend.process_id},
            "parked_calls": len(self.gateway.bridge),
        }
        if self.policies is not None:
            body["policy"] = self.policies.status
        return JSONResponse(body, status_code=200 if ready else 503)


def sealing_secrets(config: GatewayConfig) -> list[tuple[int, str]]:
    """The keyring for sealed tokens, newest first: `session_keys`, else `session_secret` or the env."""
    server = config.server
    if server.session_keys:
        return [(key.id, key.secret) for key in server.session_keys]
    secret = server.session_secret or os.environ.get(SECRET_ENV)
    return [(1, secret)] if secret else []


def create_app(config: GatewayConfig, *, port: int | None = None) -> GatewayApp:
    return GatewayApp(config, port=port)


def create_app_from_env() -> GatewayApp:
    """Factory for `uvicorn --factory` worker processes: the CLI passes the config path in the env."""
    path = os.environ[CONFIG_ENV]
    port = os.environ.get("MCP_GATEWAY_PORT")
    return GatewayApp(load_config(path), port=int(port) if port else None)
