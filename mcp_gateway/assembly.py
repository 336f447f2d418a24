"""The composition root: one function builds the whole gateway from a config, for every way it runs
(`serve`, each `--workers` process, `stdio`, `catalog`). Every part gets what it needs when it is built;
nothing is wired by assigning attributes afterwards. The fronts (HTTP in app.py, stdio in cli.py) are
thin adapters over what this returns.

The pipeline's steps are registered here, in order, in one place: `_steps`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import SpanProcessor

from llm_bridge.bridge import Bridge

from .auth import Authenticator, Principal
from .auth.metadata import canonical_resource
from .calls import LOCAL_PRINCIPAL
from .catalog.catalog import CacheHint, Catalog
from .catalog.routing import ResourceRouter
from .catalog.sync import CatalogSync
from .catalog.views import build_views
from .config import GatewayConfig
from .front.auth_gate import AuthGate
from .limits import Limiter, create_counters
from .llm import GatewayHooks
from .llm.sampling import Sampler
from .pipeline import Pipeline, Step
from .pipeline.methods import MethodTable
from .pipeline.methods.completion import Complete
from .pipeline.methods.listen import Listen
from .pipeline.methods.lists import LIST_KINDS, ListItems
from .pipeline.methods.local import Discover, Initialize, Ping, SetLevel
from .pipeline.methods.prompts import GetPrompt
from .pipeline.methods.resources import ReadResource, Subscribe
from .pipeline.methods.tools import CallTool
from .pipeline.mrtr import InputBridge
from .pipeline.server_info import ServerInfo
from .pipeline.steps import LimitsStep, PolicyStep, RouteStep, ScopesStep, TelemetryStep
from .pipeline.upstream_call import UpstreamCaller
from .policy import CurrentPolicy, PolicyEngine
from .policy.reloader import PolicyReloader
from .state import BackendUnavailable, Sealer, StateBackend, create_backend
from .telemetry.access_log import AccessLog, OtlpAccessLog
from .telemetry.hub import Telemetry
from .upstream.events import UpstreamEvents
from .upstream.pool import Connect, UpstreamPool, build_transport
from .upstream.watches import ResourceWatches

log = logging.getLogger("mcp_gateway")

SECRET_ENV = "MCP_GATEWAY_SESSION_SECRET"


@dataclass(slots=True)
class Gateway:
    """Every part of one gateway process, built and connected; `start`/`stop` run their lifecycles."""

    config: GatewayConfig
    backend: StateBackend
    sealer: Sealer
    catalog: Catalog
    pool: UpstreamPool
    sync: CatalogSync
    watches: ResourceWatches
    policy: CurrentPolicy
    reloader: PolicyReloader | None
    limiter: Limiter
    telemetry: Telemetry
    access_log: AccessLog | OtlpAccessLog | None
    authenticator: Authenticator | None
    gate: AuthGate | None
    anonymous: Principal  # who calls when nothing authenticates (allow_anonymous, stdio without a key)
    resource: str  # the gateway's canonical resource URI (token audience)
    llm: Bridge | None
    mrtr: InputBridge
    server_info: ServerInfo
    pipeline: Pipeline

    async def start(self) -> None:
        """Everything a serving process needs, in dependency order; a broken policy stops the start."""
        try:
            await self.backend.start()
        except BackendUnavailable as exc:
            log.error("state backend unavailable: %s (state.backend: %s)", exc, self.config.state.backend)
            raise
        if self.authenticator is not None:
            await self.authenticator.start()
        if self.access_log is not None:
            await self.access_log.start()
        if self.reloader is not None:
            await self.reloader.load_first()
            log.info("policy: %d rule(s) from %s", len(self.policy.engine or ()), self.reloader.directory)
            if self.config.policies is not None and self.config.policies.reload:
                self.reloader.watch()
        await self.start_upstreams()
        if self.llm is not None:
            await self.llm.start()
        self.telemetry.tracing.start_export()

    async def start_upstreams(self) -> None:
        """Connect every upstream, waiting for each first attempt up to the longest connect timeout."""
        wait = max((u.connect_timeout for u in self.config.upstreams.values()), default=5.0)
        await self.pool.start(wait)
        lists = self.catalog.snapshot.lists
        log.info(
            "catalog: %d tools, %d prompts, %d resources, %d resource templates",
            len(lists["tools"]),
            len(lists["prompts"]),
            len(lists["resources"]),
            len(lists["resourceTemplates"]),
        )

    async def stop(self) -> None:
        if self.reloader is not None:
            await self.reloader.stop()
        await self.mrtr.aclose()
        await self.pool.stop()
        if self.llm is not None:
            await self.llm.stop()
        if self.access_log is not None:
            await self.access_log.stop()
        await self.backend.stop()
        if self.authenticator is not None:
            await self.authenticator.stop()
        self.telemetry.shutdown()


def build_gateway(
    config: GatewayConfig,
    *,
    port: int | None = None,
    prometheus: bool | None = None,
    connect: Connect = build_transport,
    span_processors: Sequence[SpanProcessor] = (),
) -> Gateway:
    """The whole gateway for `config`. `port`: the port actually bound (the resource URI names it);
    `prometheus`: serve /metrics (None: as configured; stdio has nowhere to serve it). An embedding (or an
    in-process test) may bring its own upstream transports (`connect`) and span consumers."""
    server = config.server
    backend = create_backend(config.state.backend, config.state.redis_url, config.state.key_prefix)
    sealer = Sealer.from_secrets(sealing_secrets(config))
    views = build_views(config)
    catalog = Catalog(list(views))
    events = UpstreamEvents()
    sync = CatalogSync(catalog, views, backend, events)
    pool = UpstreamPool(config.upstreams, events, config.base_dir, connect)
    router = ResourceRouter(catalog, views)
    watches = ResourceWatches(pool, router.resolve)
    policy = CurrentPolicy()
    telemetry = Telemetry.from_config(
        config.telemetry, lambda: policy.engine, prometheus=prometheus, span_processors=span_processors
    )
    reloader = None
    if config.policies is not None:
        reloaded = telemetry.metrics.policy_reload if telemetry.metrics is not None else None
        reloader = PolicyReloader(Path(config.base_dir or ".") / config.policies.dir, policy.install, reloaded)
    limiter = Limiter(policy, create_counters(backend), _slot_ttl(config))
    access_log = _access_log(config)
    resource = canonical_resource(config.auth, server.host, port if port is not None else server.port, server.path)
    authenticator = Authenticator(config.auth, resource) if config.auth is not None else None
    gate = AuthGate(authenticator, resource) if authenticator is not None else None
    anonymous = Principal(config.auth.anonymous_tenant if config.auth else "default", "anonymous")
    llm: Bridge | None = None
    sampler: Sampler | None = None
    if config.llm is not None:
        hooks = GatewayHooks(policy, limiter, gate, anonymous, telemetry, access_log)
        llm = Bridge(config.llm, hooks, record_responses=telemetry.tracing.enabled)  # LLM spans hold the answer
        if config.llm.sampling_model:
            sampler = Sampler(llm, config.llm.sampling_model)
    mrtr = InputBridge(sealer, backend, server.input_wait, sampler, server.max_parked_calls)
    upstream = UpstreamCaller(pool, mrtr, sampler)
    server_info = ServerInfo(config, pool)
    default_cache = CacheHint(server.list_ttl_ms, False)
    methods = MethodTable(
        [
            CallTool(catalog, policy, upstream),
            GetPrompt(catalog, upstream),
            ReadResource(catalog, router, upstream, server.list_ttl_ms),
            Subscribe("resources/subscribe", catalog, router),
            Subscribe("resources/unsubscribe", catalog, router),
            Complete(catalog, router, upstream),
            *(ListItems(method, catalog, server.page_size, default_cache) for method in LIST_KINDS),
            Listen(router, watches, server.max_listen_uris),
            Initialize(server_info.initialize_result),
            Discover(server_info.discover_result),
            Ping(),
            SetLevel(),
        ]
    )
    pipeline = Pipeline(_steps(config, telemetry, access_log, policy, limiter, upstream), methods)

    async def announce(_engine: PolicyEngine, replacing: bool) -> None:
        if replacing:  # what clients may see changed: have them list again
            await sync.broadcast_all_changed()

    policy.on_install(announce)
    return Gateway(
        config=config,
        backend=backend,
        sealer=sealer,
        catalog=catalog,
        pool=pool,
        sync=sync,
        watches=watches,
        policy=policy,
        reloader=reloader,
        limiter=limiter,
        telemetry=telemetry,
        access_log=access_log,
        authenticator=authenticator,
        gate=gate,
        anonymous=anonymous,
        resource=resource,
        llm=llm,
        mrtr=mrtr,
        server_info=server_info,
        pipeline=pipeline,
    )


def _steps(
    config: GatewayConfig,
    telemetry: Telemetry,
    access_log: AccessLog | OtlpAccessLog | None,
    policy: CurrentPolicy,
    limiter: Limiter,
    upstream: UpstreamCaller,
) -> list[Step]:
    """The pipeline, outermost first. A new cross-cutting concern is one more step here (docs/ARCHITECTURE.md,
    "Adding a step"); steps a config cannot use are left out, so they cost nothing."""
    steps: list[Step] = [
        TelemetryStep(telemetry, access_log, upstream.protocol_of, plumbing_spans=config.telemetry.tracing.plumbing),
        RouteStep(),
    ]
    if config.policies is not None:
        steps.append(PolicyStep(policy))
    upstream_scopes = {
        name: frozenset(u.required_scopes) for name, u in config.upstreams.items() if u.enabled and u.required_scopes
    }
    if upstream_scopes or any(u.tool_scopes for u in config.upstreams.values()):
        required = frozenset(config.auth.required_scopes) if config.auth is not None else frozenset()
        steps.append(ScopesStep(required, upstream_scopes))
    if config.policies is not None:
        steps.append(LimitsStep(limiter, upstream.resumes))
    return steps


def sealing_secrets(config: GatewayConfig) -> list[tuple[int, str]]:
    """The keyring for sealed tokens, newest first: `session_keys`, else `session_secret` or the env."""
    server = config.server
    if server.session_keys:
        return [(key.id, key.secret) for key in server.session_keys]
    secret = server.session_secret or os.environ.get(SECRET_ENV)
    return [(1, secret)] if secret else []


def _slot_ttl(config: GatewayConfig):  # type: ignore[no-untyped-def]
    def ttl(upstream: str | None) -> float:
        found = config.upstreams.get(upstream) if upstream is not None else None
        return (found.timeout if found is not None else 60.0) + 60.0

    return ttl


def _access_log(config: GatewayConfig) -> AccessLog | OtlpAccessLog | None:
    path = config.telemetry.access_log
    if not path:
        return None
    if path == "otlp":
        tracing = config.telemetry.tracing
        return OtlpAccessLog(tracing.endpoint, dict(tracing.headers) or None, tracing.service_name)
    if path != "-":
        path = str(Path(config.base_dir or ".") / path)
    return AccessLog(path)


def local_principal(config: GatewayConfig) -> Principal:
    """Who an unauthenticated stdio client is: the operator on this machine, in the anonymous tenant."""
    tenant = config.auth.anonymous_tenant if config.auth is not None else LOCAL_PRINCIPAL.tenant
    return Principal(tenant, LOCAL_PRINCIPAL.subject, method="local")
