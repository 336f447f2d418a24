"""The bridge: backends started from config, the router over them, and usage costed from the price table.
Fronts (front/) turn HTTP into calls on it; the host supplies `Hooks`."""

from __future__ import annotations

import logging
import time
from typing import Any

from .assemble import StreamAssembler
from .config import BridgeConfig
from .errors import BridgeError
from .exchange import Exchange, Hooks, OpenHooks
from .providers import create_provider
from .providers.base import Answer, Provider
from .router import Resolved, Router, Served
from .usage import PriceTable, Usage

log = logging.getLogger("llm_bridge")


class Bridge:
    def __init__(self, config: BridgeConfig, hooks: Hooks | None = None, *, record_responses: bool = False) -> None:
        self.config = config
        self.hooks: Hooks = hooks or OpenHooks()
        self.providers: dict[str, Provider] = {name: create_provider(name, b) for name, b in config.backends.items()}
        self.router = Router(config, self.providers)
        self.prices = PriceTable(config.prices)
        # Whole answers kept on each exchange (streams assembled) for the host's records: on when it traces.
        self.record_responses = record_responses

    async def start(self) -> None:
        for provider in self.providers.values():
            await provider.start()
        if self.providers:
            log.info(
                "llm: %d backend(s) (%s), %d model route(s)",
                len(self.providers),
                ", ".join(f"{name}={p.kind}" for name, p in self.providers.items()),
                len(self.config.models),
            )

    async def stop(self) -> None:
        for provider in self.providers.values():
            await provider.stop()

    def resolve(self, exchange: Exchange) -> Resolved:
        """The route for the exchange's model, if the caller may use it (unknown and forbidden look alike)."""
        model = exchange.original_model
        resolved = self.router.resolve(model) if self.hooks.may_use(exchange.caller, model) else None
        if resolved is None:
            raise BridgeError(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        return resolved

    async def complete(
        self,
        caller: Any,
        request: dict[str, Any],
        *,
        front: str = "internal",
        headers: dict[bytes, bytes] | None = None,
    ) -> dict[str, Any]:
        """One whole chat completion for a caller inside the host (MCP sampling), with the same policy,
        budgets and recording as HTTP traffic; `headers` as a request's (trace context). Raises BridgeError."""
        exchange = Exchange("chat", front, str(request.get("model") or ""), False, request, caller, headers or {})
        try:
            resolved = self.resolve(exchange)
            await self.hooks.admit(exchange)
            answer, _ = await self.chat(exchange, resolved, self.hooks.outgoing_headers(exchange))
            return answer.data
        except BridgeError as exc:
            exchange.error, exchange.status = exc, exc.status
            raise
        finally:
            exchange.ended = time.monotonic()
            await self.settle(exchange)
            await self.hooks.finish(exchange)

    async def chat(self, exchange: Exchange, resolved: Resolved, extra: dict[str, str] | None) -> tuple[Answer, Served]:
        """A whole chat completion of the exchange's (canonical) request, recorded on the exchange."""
        request = exchange.request
        answer, served = await self.router.serve(resolved, lambda p, m: p.chat(request, m, extra))
        exchange.served_by(served)
        self.answered(exchange, answer.data, Usage.of(answer.data.get("usage")), served.model)
        return answer, served

    def models(self, caller: Any) -> list[str]:
        return [name for name in self.router.names() if self.hooks.may_use(caller, name)]

    async def settle(self, exchange: Exchange) -> None:
        """Usage into the host's budgets before the answer's last bytes go out, so a client that sends its
        next request as soon as it has this answer is already counted. Once per exchange."""
        if not exchange.settled:
            exchange.settled = True
            await self.hooks.spend(exchange)

    def answered(self, exchange: Exchange, data: dict[str, Any], usage: Usage | None, model: str | None) -> None:
        """A whole answer, as the exchange records it: the response, the model that answered (`model` when the
        answer names none), usage and cost."""
        exchange.response = data
        exchange.response_model = data.get("model") or model
        self.account(exchange, usage)

    def observe(self, exchange: Exchange, chunk: dict[str, Any], assembler: StreamAssembler | None) -> None:
        """One canonical stream chunk, as the exchange records it: usage, the response model, the first token."""
        usage = chunk.get("usage")
        if usage:
            self.account(exchange, Usage.of(usage))
        if exchange.response_model is None and chunk.get("model"):
            exchange.response_model = chunk["model"]
        if exchange.first_token is None and chunk.get("choices"):
            exchange.first_token = time.monotonic()
        if assembler is not None:
            assembler.add(chunk)

    def account(self, exchange: Exchange, usage: Usage | None) -> None:
        exchange.usage = usage
        if usage is not None:
            exchange.cost = self.prices.cost(usage, exchange.response_model, exchange.request_model)
