"""How the gateway authenticates to an upstream. The caller's own token is never forwarded.

Two kinds of credential:
- **the gateway's own** (a fixed secret, an OAuth client-credentials token): set on the upstream
  connection and used for every request, refreshed shortly before it expires;
- **the caller's** (an RFC 8693 exchanged token, a per-user secret): looked up per call and cached per
  caller, sent on that call only. The gateway's own traffic (listing, health probes) still uses a
  credential of its own (a client-credentials token of the same client, or `service_value`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from typing import Any

import aiohttp
import orjson
import yaml

from ..auth.discovery import metadata_documents
from ..auth.principal import Principal
from ..config.model import (
    ClientCredentials,
    HeaderCredentials,
    PerSubjectCredentials,
    TokenEndpoint,
    TokenExchangeCredentials,
    UpstreamCredentials,
)
from ..jsonrpc import UPSTREAM_ERROR, McpError

log = logging.getLogger("mcp_gateway.upstream")

_REFRESH_MARGIN = 60.0  # seconds before expiry a token is renewed
_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_CACHE_SIZE = 10_000
_FILE_CHECK_INTERVAL = 5.0
_REDIS_CACHE_SECONDS = 30.0


class Credentials:
    """The interface, and the behaviour of a credential that is the gateway's own and never changes."""

    per_caller = False

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def service_due(self) -> bool:
        """Must `service_headers` be asked again (the gateway's own token is about to expire)?"""
        return False

    async def service_headers(self) -> dict[str, str]:
        """The gateway's own credential, for the connection and its own traffic."""
        return {}

    async def caller_headers(self, principal: Principal) -> dict[str, str]:
        """The credential for one caller's request (only when `per_caller`)."""
        return {}

    def _fail(self, reason: str) -> McpError:
        return McpError(UPSTREAM_ERROR, f"upstream '{self.upstream}': {reason}")


class HeaderSecret(Credentials):
    def __init__(self, upstream: str, config: HeaderCredentials) -> None:
        super().__init__(upstream)
        self._config = config
        self._file = _WatchedFile(config.value_file) if config.value_file else None

    def service_due(self) -> bool:
        return self._file is not None and self._file.changed()

    async def service_headers(self) -> dict[str, str]:
        value = self._config.value if self._file is None else self._file.text().strip()
        return {self._config.header: self._config.format.format(value=value)}


class _TokenClient:
    """Talks to a token endpoint (found through the issuer's metadata when not configured)."""

    def __init__(self, upstream: str, config: TokenEndpoint, default_resource: str) -> None:
        self.upstream = upstream
        self.config = config
        self.resource = config.resource or default_resource
        self._url = config.token_url
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def token(self, form: dict[str, str]) -> tuple[str, float]:
        """POST a grant; returns (access token, expiry as epoch seconds)."""
        assert self._http is not None
        form = dict(form)
        if self.config.scope:
            form.setdefault("scope", self.config.scope)
        form.setdefault("resource", self.resource)
        auth = None
        if self.config.auth_method == "client_secret_basic":
            auth = aiohttp.BasicAuth(self.config.client_id, self.config.client_secret)
        else:
            form.update(client_id=self.config.client_id, client_secret=self.config.client_secret)
        try:
            url = self._url or await self._discover()
            async with self._http.post(url, data=form, auth=auth) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.upstream}': token endpoint unreachable ({exc})") from None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = {}
        if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            error = answer.get("error", f"HTTP {status}") if isinstance(answer, dict) else f"HTTP {status}"
            raise McpError(UPSTREAM_ERROR, f"upstream '{self.upstream}': no token from the token endpoint ({error})")
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        return answer["access_token"], time.time() + lifetime

    async def _discover(self) -> str:
        assert self._http is not None and self.config.issuer
        async for metadata in metadata_documents(self._http, self.config.issuer):
            if isinstance(metadata.get("token_endpoint"), str):
                self._url = metadata["token_endpoint"]
                return self._url
        raise McpError(
            UPSTREAM_ERROR, f"upstream '{self.upstream}': no token endpoint in {self.config.issuer}'s metadata"
        )


class ClientCredentialsToken(Credentials):
    def __init__(self, upstream: str, config: TokenEndpoint, default_resource: str) -> None:
        super().__init__(upstream)
        self._client = _TokenClient(upstream, config, default_resource)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._client.start()

    async def stop(self) -> None:
        await self._client.stop()

    def service_due(self) -> bool:
        return self._token is None or self._expires - _REFRESH_MARGIN < time.time()

    async def service_headers(self) -> dict[str, str]:
        async with self._lock:
            if self.service_due():
                self._token, self._expires = await self._client.token({"grant_type": "client_credentials"})
                log.info("upstream %s: client-credentials token obtained", self.upstream)
        return {"Authorization": f"Bearer {self._token}"}


class TokenExchange(ClientCredentialsToken):
    per_caller = True

    def __init__(self, upstream: str, config: TokenExchangeCredentials, default_resource: str) -> None:
        super().__init__(upstream, config, default_resource)
        self._audience = config.audience
        self._exchanged: OrderedDict[tuple[str | None, str], tuple[str, float]] = OrderedDict()
        self._pending: dict[tuple[str | None, str], asyncio.Future[tuple[str, float]]] = {}

    async def caller_headers(self, principal: Principal) -> dict[str, str]:
        if principal.token is None:
            raise self._fail("needs the caller's OAuth token to exchange, and this caller has none")
        key = (principal.issuer, principal.subject)
        cached = self._exchanged.get(key)
        if cached is None or cached[1] - _REFRESH_MARGIN < time.time():
            cached = await self._exchange(key, principal.token)
        return {"Authorization": f"Bearer {cached[0]}"}

    async def _exchange(self, key: tuple[str | None, str], subject_token: str) -> tuple[str, float]:
        # Concurrent calls of one caller share one exchange.
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            form = {
                "grant_type": _TOKEN_EXCHANGE,
                "subject_token": subject_token,
                "subject_token_type": _ACCESS_TOKEN_TYPE,
                "requested_token_type": _ACCESS_TOKEN_TYPE,
            }
            if self._audience:
                form["audience"] = self._audience
            result = await self._client.token(form)
            self._exchanged[key] = result
            if len(self._exchanged) > _CACHE_SIZE:
                self._exchanged.popitem(last=False)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            del self._pending[key]


class PerSubjectSecret(Credentials):
    per_caller = True

    def __init__(self, upstream: str, config: PerSubjectCredentials) -> None:
        super().__init__(upstream)
        self._config = config
        self._file = _WatchedFile(config.file) if config.file else None
        self._secrets: dict[str, str] = {}
        self._redis: Any = None
        self._fetched: dict[str, tuple[str | None, float]] = {}

    async def start(self) -> None:
        if self._file is not None:
            self._load()
        else:
            import redis.asyncio as redis  # only when configured

            self._redis = redis.from_url(self._config.redis_url, socket_connect_timeout=5)

    async def stop(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def service_headers(self) -> dict[str, str]:
        if self._config.service_value is None:
            return {}
        return {self._config.header: self._config.format.format(value=self._config.service_value)}

    async def caller_headers(self, principal: Principal) -> dict[str, str]:
        keys = (f"{principal.tenant}/{principal.subject}", principal.subject)
        secret = await self._from_redis(keys) if self._redis is not None else self._from_file(keys)
        if secret is None:
            raise self._fail(f"no credential is configured for {principal.subject!r}")
        return {self._config.header: self._config.format.format(value=secret)}

    def _from_file(self, keys: tuple[str, str]) -> str | None:
        assert self._file is not None
        if self._file.changed():
            self._load()
        return self._secrets.get(keys[0]) or self._secrets.get(keys[1])

    async def _from_redis(self, keys: tuple[str, str]) -> str | None:
        cached = self._fetched.get(keys[0])
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            values = await self._redis.hmget(self._config.redis_hash, list(keys))
        except Exception as exc:  # redis errors: the call fails with a clear reason, the gateway stays up
            raise self._fail(f"cannot read caller credentials from Redis ({exc})") from None
        raw = values[0] or values[1]
        secret = raw.decode() if isinstance(raw, bytes) else raw
        self._fetched[keys[0]] = (secret, time.monotonic() + _REDIS_CACHE_SECONDS)
        if len(self._fetched) > _CACHE_SIZE:
            self._fetched.clear()
        return secret

    def _load(self) -> None:
        assert self._file is not None
        try:
            loaded = yaml.safe_load(self._file.text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            log.warning(
                "upstream %s: cannot read %s: %s (keeping the previous secrets)", self.upstream, self._file.path, exc
            )
            return
        if isinstance(loaded, dict):
            self._secrets = {str(k): str(v) for k, v in loaded.items()}


class _WatchedFile:
    """A secrets file, re-read when its modification time changes (checked at most every few seconds)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime: float | None = None
        self._checked = 0.0

    def changed(self) -> bool:
        now = time.monotonic()
        if now - self._checked < _FILE_CHECK_INTERVAL:
            return False
        self._checked = now
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            return False
        return mtime != self._mtime

    def text(self) -> str:
        with open(self.path, encoding="utf-8") as handle:
            self._mtime = os.fstat(handle.fileno()).st_mtime
            return handle.read()


def build_credentials(upstream: str, config: UpstreamCredentials | None, url: str) -> Credentials | None:
    if config is None:
        return None
    if isinstance(config, HeaderCredentials):
        return HeaderSecret(upstream, config)
    if isinstance(config, TokenExchangeCredentials):
        return TokenExchange(upstream, config, url)
    if isinstance(config, ClientCredentials):
        return ClientCredentialsToken(upstream, config, url)
    if isinstance(config, PerSubjectCredentials):
        return PerSubjectSecret(upstream, config)
    raise TypeError(f"unknown credentials {config!r}")
