"""MRTR bridge: a 2026-07-28 client meets a handshake-era upstream that asks it something mid-call.

A modern client cannot be sent requests; it is answered `input_required` instead and retries with the
answers (SEP-2322). A legacy upstream, though, pushes `sampling/createMessage`, `elicitation/create`
or `roots/list` while its call is open. The bridge runs such a call as a parked task: each push the
upstream sends becomes an `inputRequests` entry, the call's state is sealed into `requestState`
(bound to the caller, the method, a digest of the arguments, an expiry and the process holding the
call), and the client's retry feeds the answers to the waiting pushes and waits for the call's next
outcome. A retry that reaches another process is forwarded to the owner through the state backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..calls import Call, ClientContext
from ..jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, RATE_LIMITED, McpError
from ..state import BackendUnavailable, Sealer, StateBackend
from .relay import CallRelay, Sampler

log = logging.getLogger("mcp_gateway.core")

STATE_PURPOSE = b"mrtr-state"
STATE_PREFIX = "gw1."  # marks requestState minted by the gateway (vs. passed through from an upstream)
_FORWARDED_TIMEOUT_MARGIN = 5.0
_SETTLE_SECONDS = 0.01

Start = Callable[[CallRelay], Awaitable[dict[str, Any]]]
# A call's next answer, and the parked work that goes on after it (None: the call ended with this answer).
Outcome = tuple[dict[str, Any], "asyncio.Future[Any] | None"]


@dataclass(slots=True)
class _Push:
    method: str
    params: dict[str, Any]
    answer: asyncio.Future[dict[str, Any]]


@dataclass(slots=True)
class _ParkedCall:
    handle: str
    relay: _ParkingRelay
    task: asyncio.Task[dict[str, Any]] | None = None
    pushes: dict[str, _Push] = field(default_factory=dict)
    # Resolved when the call ends or pushes something: one future, cheaper than an Event plus asyncio.wait.
    waiter: asyncio.Future[None] | None = None
    expiry: asyncio.TimerHandle | None = None
    _keys: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def push(self, method: str, params: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        key = f"input-{next(self._keys)}"
        self.pushes[key] = _Push(method, params, future)
        future.add_done_callback(lambda _f: self.pushes.pop(key, None))
        self.wake()
        return future

    def wake(self, _task: object = None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _ParkingRelay(CallRelay):
    """The relay of a bridged call: pushes park instead of asking the client directly."""

    __slots__ = ("parked",)

    def __init__(self, call: Call, sampler: Sampler | None, trace_headers: dict[str, str] | None) -> None:
        super().__init__(call, sampler, trace_headers)
        self.parked: _ParkedCall | None = None

    async def _ask_client(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.parked is not None
        return await self.parked.push(method, params)


class InputBridge:
    def __init__(
        self, sealer: Sealer, backend: StateBackend, wait: float, sampler: Sampler | None, max_parked: int
    ) -> None:
        self._sealer = sealer
        self._backend = backend
        self._wait = wait
        self._max_parked = max_parked
        self._parked: dict[str, _ParkedCall] = {}
        self.sampler = sampler
        self._handles = itertools.count(1)
        backend.on("resume", self._on_forwarded_resume)

    def __len__(self) -> int:
        return len(self._parked)

    @staticmethod
    def owns(params: dict[str, Any]) -> bool:
        state = params.get("requestState")
        return isinstance(state, str) and state.startswith(STATE_PREFIX)

    async def run(
        self, call: Call, start: Start, bound_to: bytes = b"", trace_headers: dict[str, str] | None = None
    ) -> Outcome:
        """Serve `call` (a first attempt, or a retry carrying our `requestState`)."""
        if self.owns(call.params):
            return await self._resume(call, bound_to, trace_headers)
        relay = _ParkingRelay(call, self.sampler, trace_headers)
        # The handle travels inside the sealed state, so it need not be unguessable: a counter will do.
        parked = _ParkedCall(str(next(self._handles)), relay)
        relay.parked = parked
        parked.task = asyncio.create_task(start(relay))
        parked.task.add_done_callback(parked.wake)
        return await self._next_outcome(parked, call, bound_to)

    async def _next_outcome(self, parked: _ParkedCall, call: Call, bound_to: bytes) -> Outcome:
        """Wait until the call finishes or needs input the client has not been asked for yet."""
        task = parked.task
        assert task is not None
        if parked.expiry is not None:
            parked.expiry.cancel()
            parked.expiry = None
        self._parked.pop(parked.handle, None)
        try:
            while not task.done():
                if _unanswered(parked):
                    # Pushes an upstream sends together (e.g. gathered) belong in one round.
                    await asyncio.sleep(_SETTLE_SECONDS)
                    return self._park(parked, call, bound_to), task
                parked.waiter = asyncio.get_running_loop().create_future()
                await parked.waiter
        except asyncio.CancelledError:
            # 2026-07-28: the client closing its stream cancels the call.
            task.cancel()
            raise
        # The call is over: undo relay <-> parked, so its objects go by reference counting, not the collector.
        parked.relay.parked = None
        return task.result(), None

    def _park(self, parked: _ParkedCall, call: Call, bound_to: bytes) -> dict[str, Any]:
        if len(self._parked) >= self._max_parked:
            assert parked.task is not None
            parked.task.cancel()
            raise McpError(
                RATE_LIMITED,
                f"too many calls are waiting for their clients' input ({self._max_parked}); retry later",
                {"limit": "server.max_parked_calls", "retryAfterSeconds": 1},
            )
        parked.expiry = asyncio.get_running_loop().call_later(self._wait, self._expire, parked.handle)
        self._parked[parked.handle] = parked
        state = {
            "h": parked.handle,
            "p": self._backend.process_id,
            "m": call.method,
            "d": _digest(call.params),
            "x": int(time.time() + self._wait),
        }
        return {
            "resultType": "input_required",
            "inputRequests": {
                key: {"method": push.method, "params": push.params} for key, push in _unanswered(parked).items()
            },
            "requestState": STATE_PREFIX + self._sealer.seal(state, STATE_PURPOSE, bound_to),
        }

    def _expire(self, handle: str) -> None:
        parked = self._parked.pop(handle, None)
        if parked is not None and parked.task is not None:
            log.info("a call waiting for the client's input expired after %gs; cancelled", self._wait)
            parked.task.cancel()

    async def _resume(self, call: Call, bound_to: bytes, trace_headers: dict[str, str] | None) -> Outcome:
        state = self._open_state(call, bound_to)
        owner = state["p"]
        responses = call.params.get("inputResponses")
        if responses is not None and not isinstance(responses, dict):
            raise McpError(INVALID_PARAMS, "inputResponses must be an object")
        if owner != self._backend.process_id:
            return await self._forward(owner, call, state["h"], responses or {}, bound_to), None
        return await self._resume_here(state["h"], responses or {}, call, bound_to, trace_headers)

    def _open_state(self, call: Call, bound_to: bytes) -> dict[str, Any]:
        token = call.params["requestState"][len(STATE_PREFIX) :]
        state = self._sealer.open(token, STATE_PURPOSE, bound_to)
        if state is None:
            raise McpError(INVALID_PARAMS, "requestState is invalid: it was altered or not issued to this caller")
        if state.get("m") != call.method or state.get("d") != _digest(call.params):
            raise McpError(INVALID_PARAMS, "requestState belongs to a different request")
        if not isinstance(state.get("x"), int) or state["x"] < time.time():
            raise McpError(INVALID_PARAMS, "requestState has expired; send the request again without it")
        if not isinstance(state.get("h"), str) or not isinstance(state.get("p"), str):
            raise McpError(INVALID_PARAMS, "requestState is invalid")
        return state

    async def _resume_here(
        self,
        handle: str,
        responses: dict[str, Any],
        call: Call,
        bound_to: bytes,
        trace_headers: dict[str, str] | None = None,
    ) -> Outcome:
        parked = self._parked.get(handle)
        if parked is None:
            raise McpError(
                INVALID_PARAMS, "the call this requestState belongs to has ended; send the request again without it"
            )
        parked.relay.rebind(call, trace_headers)
        for key, response in responses.items():
            push = parked.pushes.get(key)
            if push is None or push.answer.done():
                continue  # unknown keys are ignored; missing ones are asked again
            if isinstance(response, dict) and isinstance(response.get("error"), dict) and len(response) == 1:
                push.answer.set_exception(McpError.from_error(response["error"]))
            elif isinstance(response, dict):
                push.answer.set_result(response)
        # Give the upstream a moment to act on the answers before deciding what is still unanswered.
        await asyncio.sleep(0)
        return await self._next_outcome(parked, call, bound_to)

    async def _forward(
        self, owner: str, call: Call, handle: str, responses: dict[str, Any], bound_to: bytes
    ) -> dict[str, Any]:
        message = {
            "h": handle,
            "responses": responses,
            "method": call.method,
            "params": {k: v for k, v in call.params.items() if k not in ("inputResponses", "requestState")},
            "client": _client_payload(call.client),
            "bound": bound_to.hex(),
        }
        try:
            reply = await self._backend.ask(owner, "resume", message, self._wait + _FORWARDED_TIMEOUT_MARGIN)
        except BackendUnavailable as exc:
            raise McpError(INTERNAL_ERROR, f"the gateway process holding this call is unreachable: {exc}") from None
        if "error" in reply:
            raise McpError.from_error(reply["error"])
        result = reply.get("result")
        if not isinstance(result, dict):
            raise McpError(INTERNAL_ERROR, "malformed reply from the gateway process holding this call")
        return result

    async def _on_forwarded_resume(self, message: dict[str, Any]) -> dict[str, Any]:
        client = _client_from_payload(message.get("client"))
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        call = Call(str(message.get("method")), params, client)  # no stream here: progress stays behind
        try:
            bound = bytes.fromhex(str(message.get("bound", "")))
            result, _ = await self._resume_here(str(message.get("h")), message.get("responses") or {}, call, bound)
        except McpError as exc:
            return {"error": exc.to_error()}
        return {"result": result}

    async def aclose(self) -> None:
        for parked in list(self._parked.values()):
            if parked.task is not None:
                parked.task.cancel()
                with contextlib.suppress(BaseException):
                    await parked.task
        self._parked.clear()


def _unanswered(parked: _ParkedCall) -> dict[str, _Push]:
    return {key: push for key, push in parked.pushes.items() if not push.answer.done()}


def _digest(params: dict[str, Any]) -> str:
    """What the retry must repeat: everything but the MRTR fields and `_meta` (which may change)."""
    stable = {k: v for k, v in params.items() if k not in ("inputResponses", "requestState", "_meta")}
    return hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _client_payload(client: ClientContext) -> dict[str, Any]:
    return {
        "v": client.protocol_version,
        "c": client.capabilities,
        "i": client.client_info,
        "l": client.log_level,
    }


def _client_from_payload(payload: Any) -> ClientContext:
    payload = payload if isinstance(payload, dict) else {}
    capabilities = payload.get("c")
    info = payload.get("i")
    return ClientContext(
        protocol_version=str(payload.get("v")),
        capabilities=capabilities if isinstance(capabilities, dict) else {},
        client_info=info if isinstance(info, dict) else None,
        log_level=payload.get("l") if isinstance(payload.get("l"), str) else None,
    )
