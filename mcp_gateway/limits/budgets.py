"""Token and cost budgets of LLM traffic (policy `limits` with `tokens` or `cost`), per calendar period
in UTC, counted so every worker and replica shares them.

A request is admitted while the period's count is below the budget; what it uses is added when it ends
(tokens are known only then), so the request that crosses a budget is counted in full and the next one
is refused until the period rolls over.
"""

from __future__ import annotations

import calendar
import logging
import time
from dataclasses import dataclass

from ..auth import Principal
from ..policy.compiled import CompiledLimit
from ..state import BackendUnavailable
from .counters import Counters

log = logging.getLogger("mcp_gateway.limits")

_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "month": 31 * 86400}


@dataclass(frozen=True, slots=True)
class Budget:
    limit: CompiledLimit
    kind: str  # tok | usd
    amount: float
    key: str
    ttl: float  # seconds the period's key must live
    resets_in: float  # seconds until the period rolls over

    def describe(self) -> str:
        period = self.key.rsplit("|", 1)[1]
        unit = "tokens" if self.kind == "tok" else "USD"
        amount = f"{self.amount:g}" if self.kind == "tok" else f"{self.amount:.2f}"
        return f"budget '{self.limit.name}' of {amount} {unit} for period {period} is used up"


def budgets_for(
    limits: tuple[CompiledLimit, ...], principal: Principal, model: str, now: float | None = None
) -> list[Budget]:
    now = time.time() if now is None else now
    found: list[Budget] = []
    for limit in limits:
        for kind, budget in (("tok", limit.tokens), ("usd", limit.cost)):
            if budget is None:
                continue
            amount, period = budget
            bucket, resets_in = _period(period, now)
            key = f"{limit.key(principal, model)}|{kind}|{bucket}"
            found.append(Budget(limit, kind, amount, key, resets_in + 60, resets_in))
    return found


async def exhausted(counters: Counters, budgets: list[Budget]) -> Budget | None:
    """The first budget already used up this period, if any (None too when the counters are unreachable:
    budgets are then not enforced, and that is logged)."""
    try:
        used = await counters.usage_read([b.key for b in budgets])
    except BackendUnavailable as exc:
        log.warning("budgets not checked (the counters are unreachable): %s", exc)
        return None
    for budget, amount in zip(budgets, used, strict=True):
        if amount >= budget.amount:
            return budget
    return None


async def spend(counters: Counters, budgets: list[Budget], tokens: int, cost: float | None) -> None:
    """Count what a request used against each of its budgets."""
    try:
        for kind, amount in (("tok", float(tokens)), ("usd", cost)):
            keys = [(b.key, b.ttl) for b in budgets if b.kind == kind]
            if keys and amount:
                await counters.usage_add(keys, amount)
    except BackendUnavailable as exc:
        log.warning("usage not counted against budgets (the counters are unreachable): %s", exc)


def _period(period: str, now: float) -> tuple[str, float]:
    """The calendar bucket `now` falls in, and the seconds until the next one."""
    if period == "month":
        moment = time.gmtime(now)
        year, month = (moment.tm_year + 1, 1) if moment.tm_mon == 12 else (moment.tm_year, moment.tm_mon + 1)
        next_month = calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0))
        return f"{moment.tm_year}-{moment.tm_mon:02d}", max(1.0, next_month - now)
    length = _SECONDS[period]
    index = int(now // length)
    return f"{period[0]}{index}", (index + 1) * length - now
