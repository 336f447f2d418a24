"""OTLP/HTTP delivery of already-encoded trace requests (see `otlp_encode`), for the export process.

A small keep-alive client on `http.client` instead of the SDK exporter, so that the SDK's encoding (the costly
part) is skipped, with the configuration the SDK's HTTP exporter reads: endpoint, headers, compression, timeout
and TLS files from the arguments or OTEL_EXPORTER_OTLP_(TRACES_)*, and its retry policy (429/502/503/504 and
connection errors, exponential backoff with jitter or the collector's Retry-After, all within the timeout).
What this client does not do (proxies, credential-provider sessions) is left to the SDK: see `sdk_needed`.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import math
import os
import random
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.util.re import parse_env_headers

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://localhost:4318"
DEFAULT_TIMEOUT = 10.0  # seconds: the Python SDK reads OTEL_EXPORTER_OTLP_TIMEOUT as seconds, and so do we
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_ATTEMPTS = 6  # as the SDK: backoff 1, 2, 4, 8, 16 s (+-20%), cut short by the timeout
_JITTER = 0.2
_COMPRESSIONS = ("none", "gzip", "deflate")
_CREDENTIAL_PROVIDERS = (
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
)


@dataclass(frozen=True)
class HttpTarget:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    compression: str = "none"
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>."""
    return environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or environ.get(f"OTEL_EXPORTER_OTLP_{name}") or None


def resolve_target(
    endpoint: str | None, headers: Mapping[str, str] | None, environ: Mapping[str, str] = os.environ
) -> HttpTarget:
    """What the SDK's OTLPSpanExporter(endpoint=..., headers=...) would use. `endpoint` is the full traces URL
    (see `tracing_setup.http_traces_endpoint`); explicit headers are added to (and beat) the variables'."""
    url = endpoint or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not url:
        url = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT).removesuffix("/") + "/v1/traces"
    all_headers = {"content-type": "application/x-protobuf", "user-agent": f"OTel-OTLP-Exporter-Python/{sdk_version}"}
    all_headers.update(parse_env_headers(_env(environ, "HEADERS") or "", liberal=True))
    all_headers.update({key.lower(): value for key, value in (headers or {}).items()})
    return HttpTarget(
        url=url,
        headers=all_headers,
        compression=_compression(_env(environ, "COMPRESSION")),
        timeout=_timeout(_env(environ, "TIMEOUT")),
        ca_file=_env(environ, "CERTIFICATE"),
        client_certificate=_env(environ, "CLIENT_CERTIFICATE"),
        client_key=_env(environ, "CLIENT_KEY"),
    )


def _compression(raw: str | None) -> str:
    value = (raw or "none").strip().lower()
    if value not in _COMPRESSIONS:
        log.warning("unsupported OTLP compression %r; sending uncompressed", value)
        return "none"
    return value


def _timeout(raw: str | None) -> float:
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        value = -1.0
    if value <= 0:
        log.warning("invalid OTLP timeout %r; using %s s", raw, DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    return value


def sdk_needed(target: HttpTarget, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why this client cannot send as the SDK (its requests session) would, or None when it can."""
    split = urlsplit(target.url)
    if split.scheme not in ("http", "https") or not split.hostname:
        return f"endpoint {target.url!r} is not an http(s) URL"
    if any(environ.get(name) for name in _CREDENTIAL_PROVIDERS):
        return "a credential provider is configured"
    proxies = getproxies()
    if (proxies.get(split.scheme) or proxies.get("all")) and not proxy_bypass(split.hostname):
        return "a proxy is configured"
    return None


class OtlpHttpSender:
    """POSTs encoded requests to one endpoint over a kept-alive connection; single-threaded."""

    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        split = urlsplit(target.url)
        self._https = split.scheme == "https"
        self._host = split.hostname or "localhost"
        self._port = split.port or (443 if self._https else 80)
        self._path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        self._headers = dict(target.headers)
        if target.compression != "none":
            self._headers.setdefault("content-encoding", target.compression)
        self._connection: http.client.HTTPConnection | None = None

    def send(self, body: bytes, spans: int) -> bool:
        """Delivers one request, retrying transient failures; a one-line warning when it cannot."""
        data = self._compress(body)
        deadline = time.monotonic() + self.target.timeout
        problem = "timed out"
        for attempt in range(_MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            retry_after = None
            try:
                status, retry_after = self._post(data, remaining)
            except (OSError, http.client.HTTPException) as exc:  # connection errors are retried, as in the SDK
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
            except ValueError as exc:  # a header http.client refuses: retrying cannot help
                problem = str(exc)
                break
            else:
                if 200 <= status < 300:
                    return True
                problem = f"HTTP {status}"
                if status not in _RETRYABLE:
                    break
            backoff = retry_after if retry_after is not None else 2**attempt * random.uniform(1 - _JITTER, 1 + _JITTER)
            if attempt + 1 == _MAX_ATTEMPTS or backoff > deadline - time.monotonic():
                break
            time.sleep(backoff)
        log.warning("OTLP export to %s failed (%s): %d span(s) dropped", self.target.url, problem, spans)
        return False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _compress(self, body: bytes) -> bytes:
        if self.target.compression == "gzip":
            return gzip.compress(body, compresslevel=6)  # zlib's default trade-off (the SDK uses 9: more CPU)
        if self.target.compression == "deflate":
            return zlib.compress(body)
        return body

    def _post(self, data: bytes, timeout: float) -> tuple[int, float | None]:
        """(status, Retry-After seconds); raises OSError / HTTPException when the exchange fails."""
        connection = self._connect(timeout)
        reused = connection.sock is not None
        try:
            return self._exchange(connection, data)
        except (OSError, http.client.HTTPException) as exc:
            if not reused or isinstance(exc, TimeoutError):
                raise
        # The collector had closed the idle kept-alive connection: once more at once, on a new one.
        return self._exchange(self._connect(timeout), data)

    def _exchange(self, connection: http.client.HTTPConnection, data: bytes) -> tuple[int, float | None]:
        try:
            connection.request("POST", self._path, body=data, headers=self._headers)
            response = connection.getresponse()
            response.read()  # all of it, or the connection cannot be reused
        except BaseException:
            connection.close()  # whatever state it was left in, the next request starts afresh
            raise
        return response.status, _retry_after(response.getheader("retry-after"))

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection = self._connection
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(self._host, self._port, context=self._tls())
            else:
                connection = http.client.HTTPConnection(self._host, self._port)
            self._connection = connection
        connection.timeout = timeout  # for the next connect
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def _tls(self) -> ssl.SSLContext:
        # requests (the SDK's transport) trusts certifi's bundle unless a CA file is given; so do we.
        ca_file = self.target.ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_file is None:
            try:
                import certifi

                ca_file = certifi.where()
            except ImportError:
                pass
        is_dir = ca_file is not None and os.path.isdir(ca_file)  # requests accepts a c_rehash'd directory
        context = ssl.create_default_context(cafile=None if is_dir else ca_file, capath=ca_file if is_dir else None)
        if self.target.client_certificate:
            context.load_cert_chain(self.target.client_certificate, self.target.client_key)
        return context


def _retry_after(value: str | None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - time.time()
    return max(seconds, 0.0) if math.isfinite(seconds) else None
