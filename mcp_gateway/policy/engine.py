"""The policy engine: one decision for listing and for using a target, compiled once per reload.

Semantics, per (caller, target):
- a rule is *about* a caller when its tenants (the file's, unless the rule names its own) match;
- **deny** rules whose `when` matches the caller deny (with a condition: when it holds for the call);
- **require** rules deny callers that do not match their `when`, or whose call fails the condition;
- **allow** rules whose `when` matches allow (with a condition: when it holds for the call);
- deny wins; then an allow; else the default of the most specific file for the caller's tenant
  (no file: deny).

Conditions need the call's arguments, so lists are decided without them: a target is listed unless a
rule denies it without a condition, and if some allow (conditional or not) or the default allows it.
A call the list would not show behaves as if the target did not exist; a call refused only by a
condition is told which rule refused it.

What does not depend on the arguments is cached per (caller, target), so a call costs a dict lookup
plus the conditions that apply to it; the cache is bounded in bytes and in key size (`plans.py`).
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from typing import Any

import cel

from ..auth.principal import Principal
from .compiled import CompiledLimit, CompiledRule, compile_limit, compile_rule, globs, tenant_specificity
from .model import PolicyFile, ToolView
from .plans import MAX_KEYED_NAME, Plan, PlanCache, keyed_name

log = logging.getLogger("mcp_gateway.policy")

KINDS = ("tools", "prompts", "resources", "resourceTemplates", "models")
_versions = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    visible: bool  # would the target be listed for this caller?
    rule: str | None  # the rule (or "default of FILE") that decided
    message: str
    chain: tuple[str, ...] = ()  # every rule considered, in order, and what it said

    @property
    def denied_by_condition(self) -> bool:
        return not self.allowed and self.visible


class PolicyEngine:
    def __init__(self, files: list[tuple[str, PolicyFile, dict[int, int]]]) -> None:
        """`files`: (source path, parsed file, rule index -> line) in load order."""
        self.version = next(_versions)  # tells cached views of different engines apart (ids get reused)
        self.rules: list[CompiledRule] = []
        self.limits: list[CompiledLimit] = []
        self._views: list[tuple[re.Pattern[str], dict[str, ToolView]]] = []
        self._tenant_views: dict[str, tuple[dict[str, ToolView], dict[str, str]]] = {}
        self._defaults: list[tuple[re.Pattern[str], int, str, str]] = []  # (tenants, specificity, default, source)
        self._recordings: list[tuple[re.Pattern[str], int, dict[str, Any]]] = []  # (tenants, specificity, fields)
        for source, policy, lines in files:
            tenant_globs = globs(policy.tenants)
            assert tenant_globs is not None
            for pattern in policy.tenants:
                specificity = tenant_specificity(pattern)
                if policy.default is not None:
                    self._defaults.append((globs([pattern]), specificity, policy.default, source))  # type: ignore[arg-type]
                if policy.recording is not None:
                    fields = policy.recording.model_dump(exclude_none=True)
                    self._recordings.append((globs([pattern]), specificity, fields))  # type: ignore[arg-type]
            for index, rule in enumerate(policy.rules):
                self.rules.append(compile_rule(rule, f"{source}:{lines.get(index, 1)}", tenant_globs))
            for limit in policy.limits:
                self.limits.append(compile_limit(limit, source, tenant_globs))
            for view in policy.views:
                tenants = globs(view.tenants) if view.tenants is not None else tenant_globs
                self._views.append((tenants, view.tools))  # type: ignore[arg-type]
        self._recordings.sort(key=lambda entry: entry[1])  # least specific first: later ones win per field
        self._claims_used = sorted({c for r in self.rules for c in r.claims})
        self._plans = PlanCache()
        self._by_tenant: dict[str, list[CompiledRule]] = {}

    def __len__(self) -> int:
        return len(self.rules)

    # -- decisions -----------------------------------------------------------------------------------

    def visible(self, principal: Principal, kind: str, name: str, upstream: str | None) -> bool:
        return self._plan(principal, kind, name, upstream).visible

    def decide(
        self, principal: Principal, kind: str, name: str, upstream: str | None, args: dict[str, Any] | None
    ) -> Decision:
        plan = self._plan(principal, kind, name, upstream)
        visible = plan.visible
        chain = list(plan.chain)
        if plan.static_deny is not None:
            return Decision(False, False, plan.static_deny.name, _message(plan.static_deny), tuple(chain))
        conditional = plan.deny_if or plan.require or (plan.static_allow is None and plan.allow_if)
        activation = self._activation(plan.variables, principal, kind, name, upstream, args) if conditional else None
        for rule in plan.deny_if:
            holds = _holds(rule, activation, failure=True)
            chain.append(f"{rule.source} {rule.name}: deny if `{rule.condition_text}` -> {holds}")
            if holds:
                return Decision(False, visible, rule.name, _message(rule), tuple(chain))
        for rule in plan.require:
            holds = _holds(rule, activation, failure=False)
            chain.append(f"{rule.source} {rule.name}: require `{rule.condition_text}` -> {holds}")
            if not holds:
                return Decision(False, visible, rule.name, _message(rule), tuple(chain))
        if plan.static_allow is not None:
            return Decision(True, visible, plan.static_allow.name, "allowed", tuple(chain))
        for rule in plan.allow_if:
            holds = _holds(rule, activation, failure=False)
            chain.append(f"{rule.source} {rule.name}: allow if `{rule.condition_text}` -> {holds}")
            if holds:
                return Decision(True, visible, rule.name, "allowed", tuple(chain))
        rule_name = f"default of {plan.default_source}"
        if plan.default_allow:
            return Decision(True, visible, rule_name, "allowed by default", tuple(chain))
        if plan.allow_if:
            last = plan.allow_if[-1]
            message = (
                last.message or f"not allowed: policy rule '{last.name}' allows this only when {last.condition_text}"
            )
            return Decision(False, visible, last.name, message, tuple(chain))
        return Decision(False, visible, rule_name, "not allowed by any rule", tuple(chain))

    # -- the argument-free part, cached ---------------------------------------------------------------

    def tool_views(self, tenant: str) -> tuple[dict[str, ToolView], dict[str, str]]:
        """This tenant's tool views (exposed name -> view) and its renames (shown name -> exposed name)."""
        found = self._tenant_views.get(tenant)
        if found is None:
            views: dict[str, ToolView] = {}
            for tenants, tools in self._views:
                if tenants.match(tenant):
                    for exposed, view in tools.items():
                        views.setdefault(exposed, view)
            renames = {view.name: exposed for exposed, view in views.items() if view.name}
            found = (views, renames)
            if len(self._tenant_views) < 10_000:
                self._tenant_views[tenant] = found
        return found

    def recording_for(self, tenant: str) -> dict[str, Any]:
        """The tenant's trace recording controls (OpenInference hide settings); {} when no file sets any.
        Not cached here: `Telemetry.recording` keeps the result per engine and tenant."""
        found: dict[str, Any] = {}
        for pattern, _, fields in self._recordings:
            if pattern.match(tenant):
                found.update(fields)  # more specific files come later and win per field
        return found

    def limits_for(self, principal: Principal, kind: str, name: str, upstream: str | None) -> tuple[CompiledLimit, ...]:
        return self._plan(principal, kind, name, upstream).limits

    def caller_key(self, principal: Principal) -> tuple[Any, ...]:
        """Everything about a caller the rules can tell apart (callers with equal keys see the same)."""
        return (
            principal.tenant,
            principal.subject,
            principal.scopes,
            tuple(_claim_key(principal.claims.get(c)) for c in self._claims_used),
        )

    def _plan(self, principal: Principal, kind: str, name: str, upstream: str | None) -> Plan:
        key = (*self.caller_key(principal), kind, name if len(name) <= MAX_KEYED_NAME else keyed_name(name), upstream)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(principal, kind, name, upstream)
            self._plans.put(key, plan)
        return plan

    def _make_plan(self, principal: Principal, kind: str, name: str, upstream: str | None) -> Plan:
        plan = Plan(static_deny=None)
        for rule in self._rules_for(principal.tenant):
            if not rule.about(kind, name, upstream):
                continue
            caller = rule.matches_caller(principal)
            if rule.effect == "deny":
                if not caller:
                    continue
                if rule.condition is None:
                    plan.chain.append(f"{rule.source} {rule.name}: deny")
                    plan.static_deny = plan.static_deny or rule
                else:
                    plan.deny_if.append(rule)
            elif rule.effect == "require":
                if not caller:
                    plan.chain.append(f"{rule.source} {rule.name}: required, and the caller does not match it")
                    plan.static_deny = plan.static_deny or rule
                elif rule.condition is not None:
                    plan.require.append(rule)
            elif caller:
                if rule.condition is None:
                    plan.chain.append(f"{rule.source} {rule.name}: allow")
                    plan.static_allow = plan.static_allow or rule
                else:
                    plan.allow_if.append(rule)
        plan.limits = tuple(
            limit
            for limit in self.limits
            if limit.matcher.covers_tenant(principal.tenant)
            and limit.matcher.matches_caller(principal)
            and limit.matcher.about(kind, name, upstream)
        )
        conditional = [*plan.deny_if, *plan.require, *(plan.allow_if if plan.static_allow is None else [])]
        plan.variables = frozenset().union(*(r.variables for r in conditional))
        default = self._default_for(principal.tenant)
        if default is not None:
            plan.default_allow = default[0] == "allow"
            plan.default_source = default[1]
        return plan

    def _rules_for(self, tenant: str) -> list[CompiledRule]:
        rules = self._by_tenant.get(tenant)
        if rules is None:
            rules = [rule for rule in self.rules if rule.covers_tenant(tenant)]
            if len(self._by_tenant) < 10_000:
                self._by_tenant[tenant] = rules
        return rules

    def _default_for(self, tenant: str) -> tuple[str, str] | None:
        best: tuple[int, str, str] | None = None
        for pattern, specificity, default, source in self._defaults:
            if pattern.match(tenant) and (best is None or specificity > best[0]):
                best = (specificity, default, source)
        return (best[1], best[2]) if best is not None else None

    def _activation(
        self,
        variables: frozenset[str],
        principal: Principal,
        kind: str,
        name: str,
        upstream: str | None,
        args: dict[str, Any] | None,
    ) -> Any:
        context = cel.Context()
        if "args" in variables:
            context.add_variable("args", args or {})
        if "principal" in variables:
            claims = {k: v for k, v in principal.claims.items() if isinstance(v, str | int | float | bool | list)}
            context.add_variable(
                "principal",
                {
                    "tenant": principal.tenant,
                    "subject": principal.subject,
                    "scopes": sorted(principal.scopes),
                    "claims": claims,
                },
            )
        if "target" in variables:
            context.add_variable("target", name)
        if "kind" in variables:
            context.add_variable("kind", kind)
        if "upstream" in variables:
            context.add_variable("upstream", upstream or "")
        return context


def _holds(rule: CompiledRule, activation: Any, *, failure: bool) -> bool:
    """Evaluate a rule's condition; an expression that fails to evaluate counts as `failure` (fail closed:
    a deny holds, an allow or require does not)."""
    try:
        return bool(rule.condition.execute(activation))
    except Exception as exc:
        log.debug("policy rule %s: condition failed to evaluate (%s); treated as %s", rule.name, exc, failure)
        return failure


def _message(rule: CompiledRule) -> str:
    return rule.message or f"denied by policy rule '{rule.name}'"


def _claim_key(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
