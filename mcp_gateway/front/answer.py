"""Runs one client request through the core and encodes its JSON-RPC answer: shared by every front."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..auth import AuthError
from ..core.call import Call
from ..core.gateway import Gateway
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, McpError, error_message, result_message

log = logging.getLogger("mcp_gateway.front")

REQUEST_CANCELLED = -32800


async def answer(
    gateway: Gateway, call: Call, cancelled: set[Any], *, raise_auth: bool = True
) -> tuple[bytes, int | None]:
    """The encoded response to `call` and its error code (None on success). A request id in
    `cancelled` means the client cancelled it, which answers -32800 instead of propagating. A refusal
    for missing scopes propagates (`AuthError`: HTTP turns it into a 403 challenge), unless
    `raise_auth` is off (stdio), where it is a JSON-RPC error."""
    request_id = call.request_id
    try:
        result = await gateway.handle(call)
    except McpError as exc:
        return error_message(request_id, exc), exc.code
    except AuthError as exc:
        if raise_auth:
            raise
        return error_message(request_id, McpError(INVALID_REQUEST, exc.description)), INVALID_REQUEST
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if request_id not in cancelled or task is None:
            raise
        task.uncancel()
        return error_message(request_id, McpError(REQUEST_CANCELLED, "Request cancelled")), REQUEST_CANCELLED
    except Exception:
        log.exception("unhandled error serving %s", call.method)
        return error_message(request_id, McpError(INTERNAL_ERROR, "Internal error")), INTERNAL_ERROR
    finally:
        cancelled.discard(request_id)
    return result_message(request_id, result), None
