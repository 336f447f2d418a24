"""The step interface and how steps are chained.

A step is `async (exchange, next) -> Result`, in the spirit of Envoy's filter chain and ASGI middleware:
it may answer by itself (a refusal), or call `next` and look at (or change) what comes back. The chain is
composed once, when the gateway is assembled; serving a call is then one call of the outermost step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ..calls import Result
from .exchange import Exchange

Next = Callable[[Exchange], Awaitable[Result]]


class Step(Protocol):
    """One cross-cutting concern applied to every call (docs/ARCHITECTURE.md, "The pipeline")."""

    name: str

    async def __call__(self, exchange: Exchange, next: Next) -> Result: ...


def compose(steps: Sequence[Step], terminal: Next) -> Next:
    """`steps[0]` outermost, `terminal` innermost."""
    handler = terminal
    for step in reversed(steps):
        handler = _bind(step, handler)
    return handler


def _bind(step: Step, next: Next) -> Next:
    async def run(exchange: Exchange) -> Result:
        return await step(exchange, next)

    run.__qualname__ = f"{type(step).__name__}.run"
    return run
