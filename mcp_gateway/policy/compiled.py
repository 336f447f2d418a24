"""Policy rules and limits compiled once per load: tenant, subject and target globs as one regex each, CEL
conditions as programs, rates as intervals. What the engine matches callers and targets against."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

import cel

from ..auth.principal import Principal
from .model import Limit, Rule

_TARGET_FIELD = {
    "tools": "tools",
    "prompts": "prompts",
    "resources": "resources",
    "resourceTemplates": "resources",
    "models": "models",
}


def globs(patterns: list[str] | None) -> re.Pattern[str] | None:
    if patterns is None:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or "(?!)")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    source: str  # file:line
    effect: str
    tenants: re.Pattern[str]
    subjects: re.Pattern[str]
    scopes: frozenset[str]
    claims: dict[str, frozenset[str]]
    upstreams: re.Pattern[str] | None
    targets: dict[str, re.Pattern[str] | None]  # policy field -> globs; empty: every target
    condition: Any  # cel.Program or None
    condition_text: str | None
    message: str | None
    variables: frozenset[str] = frozenset()  # what the condition reads (only those are built per call)

    def covers_tenant(self, tenant: str) -> bool:
        return self.tenants.match(tenant) is not None

    def matches_caller(self, principal: Principal) -> bool:
        if self.subjects.match(principal.subject) is None or not self.scopes <= principal.scopes:
            return False
        for claim, wanted in self.claims.items():
            value = principal.claims.get(claim)
            values = value if isinstance(value, list) else [value]
            if not any(isinstance(v, str) and v in wanted for v in values):
                return False
        return True

    def about(self, kind: str, name: str, upstream: str | None) -> bool:
        if not self.targets and self.upstreams is None:
            return True
        if self.upstreams is not None and upstream is not None and self.upstreams.match(upstream):
            return True
        pattern = self.targets.get(_TARGET_FIELD[kind])
        return pattern is not None and pattern.match(name) is not None


_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


@dataclass(frozen=True, slots=True)
class CompiledLimit:
    name: str
    matcher: CompiledRule  # who and what it is about (effect unused)
    per: str
    interval_ms: float | None  # one request per interval, after the burst
    burst: int
    concurrency: int | None
    tokens: tuple[float, str] | None = None  # (tokens per period, period)
    cost: tuple[float, str] | None = None  # (USD per period, period)

    @property
    def budgets(self) -> bool:
        return self.tokens is not None or self.cost is not None

    def key(self, principal: Principal, target: str) -> str:
        if self.per == "tenant":
            return f"{self.name}|{principal.tenant}"
        if self.per == "subject":
            return f"{self.name}|{principal.tenant}|{principal.subject}"
        return f"{self.name}|{principal.tenant}|{principal.subject}|{target}"


def compile_limit(limit: Limit, source: str, file_tenants: re.Pattern[str]) -> CompiledLimit:
    as_rule = Rule(name=limit.name, effect="allow", when=limit.when, targets=limit.targets)
    interval_ms, burst = None, 1
    if limit.rate is not None:
        count, period = limit.rate.split("/")
        interval_ms = _PERIODS[period] * 1000 / int(count)
        burst = limit.burst or int(count)
    return CompiledLimit(
        limit.name,
        compile_rule(as_rule, source, file_tenants),
        limit.per,
        interval_ms,
        burst,
        limit.concurrency,
        _budget(limit.tokens),
        _budget(limit.cost),
    )


def tenant_specificity(pattern: str) -> int:
    """How specific a tenant pattern is: an exact name beats any glob, a longer glob beats a shorter one."""
    return 1_000 if not any(c in pattern for c in "*?[") else len(pattern.replace("*", ""))


def _budget(value: str | None) -> tuple[float, str] | None:
    if value is None:
        return None
    amount, period = value.split("/")
    return float(amount), period


def compile_rule(rule: Rule, source: str, file_tenants: re.Pattern[str]) -> CompiledRule:
    tenants = globs(rule.when.tenants) if rule.when.tenants is not None else file_tenants
    program = cel.compile(rule.condition) if rule.condition is not None else None
    variables = frozenset(program.references().get("variables", ())) if program is not None else frozenset()
    targets = {
        kind: globs(getattr(rule.targets, kind))
        for kind in ("tools", "resources", "prompts", "models")
        if getattr(rule.targets, kind) is not None
    }
    return CompiledRule(
        name=rule.name,
        source=source,
        effect=rule.effect,
        tenants=tenants,  # type: ignore[arg-type]
        subjects=globs(rule.when.subjects),  # type: ignore[arg-type]
        scopes=frozenset(rule.when.scopes),
        claims={k: frozenset([v] if isinstance(v, str) else v) for k, v in rule.when.claims.items()},
        upstreams=globs(rule.targets.upstreams),
        targets=targets,
        condition=program,
        condition_text=rule.condition,
        message=rule.message,
        variables=variables,
    )
