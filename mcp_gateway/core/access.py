"""May this caller see and use this target, and how much: OAuth scopes (per upstream and per tool), the
policy files (visibility, argument conditions, curated views) and the policy's limits.

The gateway asks here before it lists or routes anything; every refusal is one of: the target does not
exist for this caller, a tool error naming the rule that refused its arguments, a 403 naming the scopes
to step up to, or a limit with its retry-after.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import orjson

from ..auth import Principal, insufficient_scope
from ..catalog.catalog import Entry
from ..config import GatewayConfig
from ..jsonrpc import INVALID_PARAMS, RATE_LIMITED, RESOURCE_NOT_FOUND, McpError
from ..policy import PolicyEngine
from ..state import BackendUnavailable, StateBackend
from .call import Call

log = logging.getLogger("mcp_gateway.core")
audit = logging.getLogger("mcp_gateway.audit")


class PolicyDenied(Exception):
    """A call the policy refuses because of its arguments (the target itself is visible)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class Access:
    def __init__(self, config: GatewayConfig, backend: StateBackend, upstreams: list[str]) -> None:
        self.config = config
        self.backend = backend
        self.policy: PolicyEngine | None = None  # set (and swapped on reload) by the app
        self._required_scopes = frozenset(config.auth.required_scopes) if config.auth is not None else frozenset()
        self._upstream_scopes = {
            name: frozenset(config.upstreams[name].required_scopes)
            for name in upstreams
            if config.upstreams[name].required_scopes
        }
        self._hidden_by_scopes: dict[frozenset[str], frozenset[str]] = {}

    def tool_view(self, call: Call, name: Any) -> tuple[Any, Any]:
        """The catalog name a call's tool name stands for (through the tenant's renames), and its view."""
        policy = self.policy
        if policy is None or not isinstance(name, str):
            return name, None
        views, renames = policy.tool_views(call.principal.tenant)
        if name in renames:
            name = renames[name]
        elif name in views and views[name].name:
            raise McpError(INVALID_PARAMS, f"Unknown tool: {name}")  # this tenant knows it by another name
        return name, views

    @staticmethod
    def tool_arguments(view: Any, arguments: dict[str, Any]) -> dict[str, Any]:
        if view is None or not (view.fixed_args or view.hidden_args):
            return arguments
        dropped = set(view.hidden_args) | set(view.fixed_args)
        return {**{k: v for k, v in arguments.items() if k not in dropped}, **view.fixed_args}

    def check_scopes(self, upstream: str, extra: frozenset[str], call: Call) -> None:
        needed = self._upstream_scopes.get(upstream, frozenset()) | extra
        if needed and not needed <= call.principal.scopes:
            missing = " ".join(sorted(needed - call.principal.scopes))
            raise insufficient_scope(needed | self._required_scopes, f"this needs the scope(s): {missing}")

    def view(self, kind: str, call: Call) -> tuple[Any, Callable[[Entry], bool]] | None:
        """What this caller may see of a list: upstreams its scopes allow, targets the policy allows."""
        hidden = self.hidden_upstreams(call)
        policy = self.policy
        if policy is None:
            if not hidden:
                return None
            return hidden, lambda entry: entry.upstream not in hidden
        principal = call.principal

        def keep(entry: Entry) -> bool:
            return entry.upstream not in hidden and policy.visible(principal, kind, entry.exposed, entry.upstream)

        return (hidden, policy.version, policy.caller_key(principal)), keep

    def shown_tools(self, call: Call) -> Callable[[Entry], dict[str, Any]] | None:
        """The tenant's curated view of tool definitions (renamed, described, arguments fixed or hidden)."""
        policy = self.policy
        if policy is None:
            return None
        views, _ = policy.tool_views(call.principal.tenant)
        if not views:
            return None

        def shown(entry: Entry) -> dict[str, Any]:
            view = views.get(entry.exposed)
            return entry.definition if view is None else _curated(entry.definition, view)

        return shown

    def check_policy(self, call: Call, kind: str, target: str, upstream: str, args: dict[str, Any] | None) -> None:
        """Raise unless the policy lets this caller use the target: a target it may not see is unknown to
        it; one refused by a condition on the arguments names the rule (`PolicyDenied`)."""
        policy = self.policy
        if policy is None:
            return
        decision = policy.decide(call.principal, kind, target, upstream, args)
        if decision.allowed:
            return
        principal = call.principal
        record = {
            "event": "deny",
            "tenant": principal.tenant,
            "subject": principal.subject,
            "kind": kind,
            "target": target,
            "upstream": upstream,
            "rule": decision.rule,
            "reason": decision.message,
        }
        audit.info("%s", orjson.dumps(record).decode())
        if not decision.visible:
            singular = {"resources": "resource", "resourceTemplates": "resource"}.get(kind, kind.rstrip("s"))
            if kind == "resources":
                raise McpError(
                    INVALID_PARAMS if call.client.modern else RESOURCE_NOT_FOUND, "Resource not found", {"uri": target}
                )
            raise McpError(INVALID_PARAMS, f"Unknown {singular}: {target}")
        raise PolicyDenied(decision.rule or "policy", decision.message)

    def check_resource_policy(self, call: Call, uri: str, upstream: str) -> None:
        try:
            self.check_policy(call, "resources", uri, upstream, None)
        except PolicyDenied as denied:
            raise McpError(INVALID_PARAMS, f"{denied.message} (policy rule '{denied.rule}')") from None

    def hidden_upstreams(self, call: Call) -> frozenset[str]:
        """Upstreams whose scopes the caller lacks: absent from its lists."""
        if not self._upstream_scopes:
            return frozenset()
        scopes = call.principal.scopes
        hidden = self._hidden_by_scopes.get(scopes)
        if hidden is None:
            hidden = frozenset(name for name, needed in self._upstream_scopes.items() if not needed <= scopes)
            if len(self._hidden_by_scopes) < 1024:
                self._hidden_by_scopes[scopes] = hidden
        return hidden

    async def admit(self, principal: Principal, kind: str, target: str, upstream: str | None) -> list[str]:
        """Apply the policy's rate and concurrency limits to this call: its concurrency slots (to release),
        or `RATE_LIMITED`. (Token and cost budgets of LLM traffic: `llm/budgets.py`.)"""
        policy = self.policy
        if policy is None:
            return []
        limits = policy.limits_for(principal, kind, target, upstream)
        if not limits:
            return []
        slots: list[str] = []
        try:
            for limit in limits:
                key = limit.key(principal, target)
                if limit.concurrency is not None:
                    if not await self.backend.concurrency_acquire(key, limit.concurrency, self._slot_ttl(upstream)):
                        raise McpError(
                            RATE_LIMITED,
                            f"limit '{limit.name}': {limit.concurrency} call(s) already in flight; retry when one ends",
                            {"limit": limit.name, "retryAfterSeconds": 1},
                        )
                    slots.append(key)
                if limit.interval_ms is not None:
                    wait_ms = await self.backend.rate_acquire(key, limit.interval_ms, limit.burst)
                    if wait_ms > 0:
                        seconds = max(1, math.ceil(wait_ms / 1000))
                        raise McpError(
                            RATE_LIMITED,
                            f"limit '{limit.name}' reached; retry after {seconds}s",
                            {"limit": limit.name, "retryAfterSeconds": seconds},
                        )
        except BaseException:
            for key in slots:
                await self.release(key)
            raise
        return slots

    async def release(self, key: str) -> None:
        try:
            await self.backend.concurrency_release(key)
        except BackendUnavailable as exc:
            log.warning("could not release a concurrency slot (it expires by itself): %s", exc)

    def _slot_ttl(self, upstream: str | None) -> float:
        config = self.config.upstreams.get(upstream) if upstream is not None else None
        return (config.timeout if config is not None else 60.0) + 60.0


def _curated(definition: dict[str, Any], view: Any) -> dict[str, Any]:
    """A tool definition as a tenant's view shows it."""
    shown = dict(definition)
    if view.name:
        shown["name"] = view.name
    if view.description is not None:
        shown["description"] = view.description
    dropped = set(view.hidden_args) | set(view.fixed_args)
    schema = shown.get("inputSchema")
    if dropped and isinstance(schema, dict):
        properties = schema.get("properties")
        schema = dict(schema)
        if isinstance(properties, dict):
            schema["properties"] = {k: v for k, v in properties.items() if k not in dropped}
        if isinstance(schema.get("required"), list):
            schema["required"] = [k for k in schema["required"] if k not in dropped]
        shown["inputSchema"] = schema
    return shown
