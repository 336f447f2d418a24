"""Errors as clients' SDKs expect them: one exception inside the bridge, rendered per front door."""

from __future__ import annotations

from typing import Any

import orjson

# OpenAI error types by status (what the `openai` SDK and OpenAI-compatible servers use).
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class BridgeError(Exception):
    """A request the bridge could not serve. `backend` names the backend whose answer this is, if any."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        backend: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or openai_error_type(status)
        self.code = code
        self.backend = backend
        self.retry_after = retry_after
        self.param = param
        self.extra_headers = headers or []

    def openai_body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return self.extra_headers
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode()), *self.extra_headers]


def openai_error_type(status: int) -> str:
    if status in _OPENAI_TYPES:
        return _OPENAI_TYPES[status]
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error_of(status: int, body: bytes) -> tuple[str, str]:
    """An OpenAI-compatible error response -> (type, message); tolerant of servers that answer plain text."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return openai_error_type(status), text[:500] or f"HTTP {status}"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or openai_error_type(status)), str(error.get("message") or f"HTTP {status}")
    if isinstance(error, str):  # vLLM, Ollama: {"error": "..."}
        return openai_error_type(status), error
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return openai_error_type(status), data["message"]
    return openai_error_type(status), f"HTTP {status}"
