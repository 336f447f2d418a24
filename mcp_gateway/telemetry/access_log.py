"""The access log: one JSON line per MCP request, written off the hot path.

Lines are appended to an in-memory buffer and flushed by a background task a few times a second (or
when the buffer grows), so a call costs one dict and one `orjson.dumps`. The log never carries secrets:
no headers, no tokens, no arguments or results (those belong to traces, with their own hiding rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Any, BinaryIO

import orjson

log = logging.getLogger("mcp_gateway.telemetry")

_FLUSH_SECONDS = 0.25
_FLUSH_BYTES = 256 * 1024


class AccessLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._buffer: list[bytes] = []
        self._size = 0
        self._file: BinaryIO | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.path == "-":
            self._file = sys.stdout.buffer
        else:
            self._file = open(self.path, "ab")  # noqa: SIM115 - lives as long as the process
        self._task = asyncio.create_task(self._flush_forever(), name="access-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self.flush()
        if self._file is not None and self.path != "-":
            self._file.close()

    def record(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry) + b"\n"
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer or self._file is None:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        try:
            self._file.write(data)
            self._file.flush()
        except OSError as exc:
            log.warning("access log %s: write failed: %s", self.path, exc)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_SECONDS)
            self.flush()


_MAX_FIELD = 256  # a client's spelling of a method or target is cut to this many characters


def entry_for(
    *,
    method: str,
    target: str | None,
    tenant: str,
    subject: str,
    upstream: str | None,
    protocol: str,
    session: str | None,
    error: int | None,
    duration: float,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """One MCP request: `target` is the tool or prompt name or the resource URI it was about."""
    return {
        "ts": round(time.time(), 3),
        "pid": os.getpid(),
        "method": method[:_MAX_FIELD],
        "target": target[:_MAX_FIELD] if target is not None else None,
        "upstream": upstream,
        "tenant": tenant,
        "subject": subject,
        "protocol": protocol,
        "session": session[:12] if session else None,  # a prefix identifies it without revealing it
        "status": "ok" if error is None else "error",
        "error": error,
        "duration_ms": round(duration * 1000, 3),
        "trace_id": trace_id,
    }


def refusal_entry(*, http_method: str, status: int, error: str | None, started: float) -> dict[str, Any]:
    """A request refused at the door (no or bad credentials, missing scopes) before it became a call."""
    return {
        "ts": round(time.time(), 3),
        "pid": os.getpid(),
        "method": None,
        "http": http_method,
        "target": None,
        "upstream": None,
        "tenant": None,
        "subject": None,
        "status": "refused",
        "error": status,
        "reason": error,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


class OtlpAccessLog:
    """The access log as OTLP log records (`telemetry.access_log: otlp`): one record per request, its fields
    as attributes, exported in batches off the request path. Endpoint and headers as for traces."""

    def __init__(self, endpoint: str | None, headers: dict[str, str] | None, service_name: str | None) -> None:
        self._endpoint = endpoint
        self._headers = headers
        self._service_name = service_name
        self._provider: Any = None
        self._logger: Any = None

    async def start(self) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        endpoint = self._endpoint
        if endpoint and endpoint.rstrip("/").count("/") <= 2:  # a collector's base URL
            endpoint = endpoint.rstrip("/") + "/v1/logs"
        resource = Resource.create({"service.name": self._service_name} if self._service_name else {})
        self._provider = LoggerProvider(resource=resource)
        self._provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, headers=self._headers))
        )
        self._logger = self._provider.get_logger("mcp_gateway.access")

    async def stop(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()

    def record(self, entry: dict[str, Any]) -> None:
        from opentelemetry._logs import SeverityNumber

        failed = entry.get("status") not in ("ok", None)
        self._logger.emit(
            timestamp=int((entry.get("ts") or time.time()) * 1e9),
            severity_number=SeverityNumber.WARN if failed else SeverityNumber.INFO,
            severity_text="WARN" if failed else "INFO",
            body=f"{entry.get('method')} {entry.get('target') or ''}".strip(),
            attributes={key: value for key, value in entry.items() if value is not None and key != "ts"},
            event_name="mcp_gateway.access",
        )

    def flush(self) -> None:
        if self._provider is not None:
            self._provider.force_flush()
