"""A call through the pipeline, and its answer as the JSON-RPC message the client gets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson

from ..calls import Call, Result
from ..jsonrpc import REQUEST_CANCELLED, UPSTREAM_ERROR, McpError, error_message, result_message
from ..pipeline import Pipeline
from .dialogue import Dialogue

_CANCELLED = McpError(REQUEST_CANCELLED, "Request cancelled")


@dataclass(slots=True)
class Reply:
    request_id: object
    body: bytes  # the encoded JSON-RPC response
    result: Result

    @property
    def ok(self) -> bool:
        return self.result.error is None


async def answer(pipeline: Pipeline, call: Call, dialogue: Dialogue | None = None) -> Reply:
    """Run `call`. With a `dialogue`, the call is in flight there until it ends, so the client can cancel it
    (`notifications/cancelled`): its answer is then -32800, rather than the cancellation going on up (any
    other cancellation — the gateway stopping, an HTTP client hanging up — propagates)."""
    task = asyncio.current_task()
    if dialogue is not None and task is not None:
        dialogue.started(call.request_id, task)
    try:
        result = await pipeline.run(call)
    except asyncio.CancelledError:
        if dialogue is None or task is None or not dialogue.was_cancelled(call.request_id):
            raise
        task.uncancel()
        result = Result.failed(_CANCELLED)
    finally:
        if dialogue is not None:
            dialogue.ended(call.request_id)
    return Reply(call.request_id, encode(call.request_id, result), result)


def encode(request_id: object, result: Result) -> bytes:
    if result.error is not None:
        return error_message(request_id, result.error)
    try:
        return result_message(request_id, result.payload)
    except (TypeError, orjson.JSONEncodeError):  # an upstream's answer nested past what JSON encoders take
        upstream = result.upstream or "the upstream"
        return error_message(
            request_id, McpError(UPSTREAM_ERROR, f"{upstream} sent an answer that cannot be passed on")
        )
