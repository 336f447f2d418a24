"""Token and cost budgets of LLM traffic (policy `limits` with `tokens` or `cost`), per calendar period
in UTC, counted in the state backend so every worker and replica shares them.

A request is admitted while the period's count is below the budget; what it uses is added when it ends
(tokens are known only then), so the request that crosses a budget is counted in full and the next one
is refused until the period rolls over.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from ..auth import Principal
from ..policy.engine import CompiledLimit

_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "month": 31 * 86400}


@dataclass(frozen=True, slots=True)
class Counter:
    limit: CompiledLimit
    kind: str  # tok | usd
    budget: float
    key: str
    ttl: float  # seconds the period's key must live
    resets_in: float  # seconds until the period rolls over


def counters(
    limits: tuple[CompiledLimit, ...], principal: Principal, model: str, now: float | None = None
) -> list[Counter]:
    now = time.time() if now is None else now
    found: list[Counter] = []
    for limit in limits:
        for kind, budget in (("tok", limit.tokens), ("usd", limit.cost)):
            if budget is None:
                continue
            amount, period = budget
            bucket, resets_in = _period(period, now)
            key = f"{limit.key(principal, model)}|{kind}|{bucket}"
            found.append(Counter(limit, kind, amount, key, resets_in + 60, resets_in))
    return found


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


def describe(counter: Counter) -> str:
    period = counter.key.rsplit("|", 1)[1]
    unit = "tokens" if counter.kind == "tok" else "USD"
    budget = f"{counter.budget:g}" if counter.kind == "tok" else f"{counter.budget:.2f}"
    return f"budget '{counter.limit.name}' of {budget} {unit} for period {period} is used up"
