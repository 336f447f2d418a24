"""A real, small OAuth 2 authorization server for the gateway's auth tests.

A separate process that issues RS256 JWT access tokens (and opaque ones on request), so the
gateway is tested against real discovery, JWKS, PKCE, refresh, token exchange and introspection
rather than mocks.  It binds 127.0.0.1 only and is driven by command-line options::

    python tests/support/oauth_server.py [options]

    --port N                      bind 127.0.0.1:N (default 0 picks a free port).
    --record FILE                 append one JSON line per /authorize, /token, /introspect and /jwks
                                  request to FILE (flushed).
    --client ID:SECRET            pre-register a confidential client (repeatable).  It may use every
                                  grant and any redirect URI on http://127.0.0.1:* or http://localhost:*.
    --user NAME[:CLAIM=VALUE...]  define a user and the extra claims its tokens carry (repeatable); a
                                  value with a comma is a list (``alice:tenant=eng:groups=eng,admins``).
                                  Values cannot contain ':'.
    --default-user NAME           the user when /authorize has no login_hint (default alice); this user
                                  exists even without a --user for it.
    --token-ttl SECONDS           access token lifetime (default 3600).
    --audience AUD                ``aud`` of tokens asked for without any resource/audience
                                  (default: the client_id).

Once listening it prints ``READY http://127.0.0.1:<port>`` (the issuer, no trailing slash) on
stdout.  SIGINT and SIGTERM shut it down with exit status 0.  It signs with an RSA 2048 key made at
start, kid ``k1``.  Everything lives in memory.

Endpoints::

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (every endpoint below, scopes, grants,
         /.well-known/openid-configuration         S256, RFC 9207 iss); both paths serve the same document.
    GET  /jwks          the published public keys.
    GET  /authorize     auto-approves, no UI.  response_type=code, client_id, redirect_uri (may be omitted
                        when the client registered exactly one), code_challenge + code_challenge_method=S256
                        (PKCE is mandatory); optional scope (default: the client's registered scope, else
                        mcp:tools), state, resource (RFC 8707, repeatable), login_hint (a user name; an
                        unknown one is access_denied).  302 to redirect_uri with code (single use, 60 s),
                        state and iss.  Errors redirect the same way (error, error_description, state, iss),
                        or are a 400 JSON body when client_id or redirect_uri is bad.
    POST /token         form-encoded.  Client auth: client_secret_basic, client_secret_post, or client_id
                        alone for public clients.  Grants:
                          authorization_code  code, redirect_uri, code_verifier; resource may narrow the
                                              one given at /authorize.  Returns a refresh token too.
                          refresh_token       rotating: the old refresh token stops working.  Same sub,
                                              scope and resource; scope/resource may narrow.
                          client_credentials  confidential clients; sub = client_id; scope as requested,
                                              else the registered scope, else mcp:tools.
                          urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693)
                                              confidential client = the actor; subject_token = an active
                                              token from here, subject_token_type ...:access_token (or
                                              ...:jwt); audience and/or resource required; scope as
                                              requested, else the subject token's.  The new token keeps
                                              sub and the extra claims and gains act {"sub": client_id},
                                              nesting any act the subject token had.
                        resource/audience becomes ``aud`` (one value: a string, several: a list).  Errors:
                        RFC 6749 §5.2 JSON, 400, or 401 for invalid_client.
    POST /introspect    RFC 7662; confidential client auth; form token.  {"active": true, every claim,
                        "token_type": "Bearer"} for an unrevoked JWT signed by a published key with our iss
                        and a valid exp/nbf, or an opaque token from /test/mint; else {"active": false}.
    POST /revoke        RFC 7009; any client auth; form token (access, refresh or opaque); always 200.
    POST /register      RFC 7591 DCR, JSON.  token_endpoint_auth_method client_secret_basic (default),
                        client_secret_post, or none (a public client, no secret).  grant_types (default
                        authorization_code + refresh_token) are enforced at /authorize and /token;
                        redirect_uris match exactly.  201 with client_id, client_secret (confidential only),
                        client_id_issued_at, client_secret_expires_at 0, and every field sent, unknown too.

Access tokens are JWTs, header {alg RS256, kid, typ at+jwt}, claims: the user's extra claims, then iss,
sub, aud, exp, iat, nbf, jti, scope (space separated), client_id (and act after an exchange).

Test-only endpoints (no auth; they exist so tests can craft every bad token)::

    POST /test/mint      JSON {"claims": {...}, "omit": [...], "header": {...}, "sign": ..., "opaque": bool,
                         "tamper": {...}} -> {"token"}.  claims are merged over defaults iss, sub (default
                         user; that user's extra claims come along), aud (--audience, else "test-mint"),
                         exp (now + ttl), iat, nbf, jti, scope "mcp:tools", client_id "test-mint"; omit drops
                         claims; header adds/overrides JOSE header fields.  sign: "current" (default; the
                         signing key), "unknown" (a key whose kid, "unknown-kid" unless overridden, is not
                         published), "none" (unsecured ``b64(header).b64(payload).``), "tampered" (signed,
                         then the payload gets "tamper", default {"tampered": true}, so the signature fails).
                         opaque: true returns a random opaque token that only /introspect knows.
    POST /test/rotate    new RSA key, kid k<N>, published alongside the old ones and used to sign from now
                         on -> {"kid"}.
    GET  /test/requests  every /token request so far: {"grant_type", "client_id", "auth", and the form
                         fields except client_secret and code_verifier}; a repeated field is a list.

Record lines: {"ts", "path", ...}: /token as in /test/requests; /authorize its query parameters;
/introspect {"client_id", "auth", "token"}; /jwks {"kids"}.  Written before the request is handled.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import orjson
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import JWSRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

SCOPES = ["mcp:tools", "mcp:read", "mcp:write", "repo:read", "repo:write"]
DEFAULT_SCOPE = "mcp:tools"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt")
GRANTS = ["authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
REGISTERED_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "client_id", "act"}
CODE_TTL = 60
MINT_CLIENT = "test-mint"
# Minted tokens may carry any header field or alg a test wants; joserfc is strict by default.
LENIENT = JWSRegistry(strict_check_header=False, algorithms=["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
VERIFY = JWSRegistry(strict_check_header=False, algorithms=["RS256"])


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class Client:
    client_id: str
    secret: str | None  # None: a public client
    redirect_uris: list[str] | None = None  # None: any loopback URI (pre-registered clients)
    grant_types: list[str] | None = None  # None: every grant
    scope: str | None = None

    def allows(self, grant: str) -> bool:
        return self.grant_types is None or grant in self.grant_types


@dataclass
class Grant:
    """What an authorization code or refresh token stands for."""

    client_id: str
    user: str
    scope: str
    resources: list[str]
    redirect_uri: str = ""
    redirect_given: bool = False
    challenge: str = ""
    expires: float = 0.0


@dataclass
class Options:
    port: int
    record: str | None
    clients: list[Client]
    users: dict[str, dict[str, Any]]
    default_user: str
    token_ttl: int
    audience: str | None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def check_resources(resources: list[str]) -> list[str]:
    for resource in resources:
        parts = urlsplit(resource)
        if not parts.scheme or not parts.netloc or parts.fragment:
            raise OAuthError("invalid_target", f"resource must be an absolute URI without fragment: {resource}")
    return resources


def narrow(requested: list[str], granted: list[str], error: str) -> list[str]:
    """RFC 6749 §6 / RFC 8707 §2.2: a later request may ask for less than was granted, never more."""
    if granted and not set(requested) <= set(granted):
        raise OAuthError(error, f"not within the original grant: {' '.join(sorted(set(requested) - set(granted)))}")
    return requested or granted


Handler = Callable[["OAuthServer", Request], Awaitable[Response]]


def oauth_errors(handler: Handler) -> Handler:
    async def wrapper(self: OAuthServer, request: Request) -> Response:
        try:
            return await handler(self, request)
        except OAuthError as exc:
            headers = {"www-authenticate": 'Basic realm="oauth"'} if exc.status == 401 else None
            return json_response({"error": exc.error, "error_description": exc.description}, exc.status, headers)

    return wrapper


@dataclass
class OAuthServer:
    opts: Options
    issuer: str
    keys: list[RSAKey] = field(default_factory=list)  # published; the last one signs
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    opaque: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)  # whole token strings: minted tokens may lack jti
    requests: list[dict[str, Any]] = field(default_factory=list)
    unknown_key: RSAKey | None = None
    record_file: IO[bytes] | None = None

    def __post_init__(self) -> None:
        self.keys.append(RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True))
        self.clients.update({c.client_id: c for c in self.opts.clients})
        self.opts.users.setdefault(self.opts.default_user, {})
        if self.opts.record:
            self.record_file = open(self.opts.record, "ab")  # noqa: SIM115 - lives as long as the process

    def app(self) -> Starlette:
        get, post = ["GET"], ["POST"]
        routes = [
            Route("/.well-known/oauth-authorization-server", self.metadata, methods=get),
            Route("/.well-known/openid-configuration", self.metadata, methods=get),
            Route("/jwks", self.jwks, methods=get),
            Route("/authorize", self.authorize, methods=get),
            Route("/token", self.token, methods=post),
            Route("/introspect", self.introspect, methods=post),
            Route("/revoke", self.revoke, methods=post),
            Route("/register", self.register, methods=post),
            Route("/test/mint", self.mint, methods=post),
            Route("/test/rotate", self.rotate, methods=post),
            Route("/test/requests", self.list_requests, methods=get),
        ]
        return Starlette(routes=routes)

    def record(self, entry: dict[str, Any]) -> None:
        if self.record_file:
            self.record_file.write(orjson.dumps({"ts": time.time(), **entry}) + b"\n")
            self.record_file.flush()

    # -- tokens ---------------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None, key: RSAKey | None = None) -> str:
        key = key or self.keys[-1]
        return jwt.encode(
            {"alg": "RS256", "kid": key.kid, "typ": "at+jwt", **(header or {})}, claims, key, registry=LENIENT
        )

    def access_token(
        self, client_id: str, sub: str, scope: str, aud: list[str], extra: dict[str, Any], act: Any = None
    ) -> str:
        now = int(time.time())
        claims = {
            **extra,
            "iss": self.issuer,
            "sub": sub,
            "aud": one_or_list(aud or [self.opts.audience or client_id]),
            "exp": now + self.opts.token_ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_hex(16),
            "scope": scope,
            "client_id": client_id,
        }
        if act is not None:
            claims["act"] = act
        return self.sign(claims)

    def active_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this server stands behind right now, else None."""
        if token in self.revoked:
            return None
        if token in self.opaque:
            claims: Any = self.opaque[token]
        else:
            try:
                claims = jwt.decode(token, KeySet(self.keys), algorithms=["RS256"], registry=VERIFY).claims
            except Exception:  # garbage of any shape is simply not active
                return None
            if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
                return None
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (isinstance(exp, int | float) and exp <= now) or (isinstance(nbf, int | float) and nbf > now):
            return None
        return claims

    # -- client authentication ------------------------------------------------------------------------

    @staticmethod
    def credentials(request: Request, form: dict[str, list[str]]) -> tuple[str | None, str | None, str]:
        """(client_id, secret, method) as presented, not yet checked."""
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            if "client_secret" in form:
                raise OAuthError("invalid_request", "use one client authentication method, not two")
            try:
                client_id, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
            except ValueError as exc:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
            # RFC 6749 §2.3.1: both parts are form-urlencoded inside the Basic header.
            return unquote_plus(client_id), unquote_plus(secret), "client_secret_basic"
        client_id = form.get("client_id", [None])[0]
        if "client_secret" in form:
            return client_id, form["client_secret"][0], "client_secret_post"
        return client_id, None, "none"

    def authenticate(self, presented: tuple[str | None, str | None, str], *, confidential: bool) -> Client:
        client_id, secret, _ = presented
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        if client.secret is None:
            if secret is not None:
                raise OAuthError("invalid_client", "a public client has no secret", 401)
            if confidential:
                raise OAuthError("invalid_client", "this needs an authenticated confidential client", 401)
        elif secret is None or not hmac.compare_digest(secret.encode(), client.secret.encode()):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    @staticmethod
    async def read_form(request: Request) -> dict[str, list[str]]:
        form: dict[str, list[str]] = {}
        for key, value in parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True):
            form.setdefault(key, []).append(value)
        return form

    # -- endpoints ------------------------------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        base = self.issuer
        return json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "introspection_endpoint": f"{base}/introspect",
                "registration_endpoint": f"{base}/register",
                "revocation_endpoint": f"{base}/revoke",
                "scopes_supported": SCOPES,
                "response_types_supported": ["code"],
                "grant_types_supported": GRANTS,
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": AUTH_METHODS,
                "introspection_endpoint_auth_methods_supported": AUTH_METHODS[:2],
                "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
                "authorization_response_iss_parameter_supported": True,
                "client_id_metadata_document_supported": False,
            }
        )

    async def jwks(self, request: Request) -> Response:
        self.record({"path": "/jwks", "kids": [key.kid for key in self.keys]})
        return json_response(KeySet(self.keys).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        self.record({"path": "/authorize", **{k: one_or_list(query.getlist(k)) for k in query}})
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return json_response({"error": "invalid_client", "error_description": "unknown client_id"}, 400)
        redirect_uri = query.get("redirect_uri")
        registered = client.redirect_uris
        if redirect_uri is None and registered and len(registered) == 1:
            redirect_uri = registered[0]  # RFC 6749 §3.1.2.3: the only registered one is implied
        parts = urlsplit(redirect_uri or "")
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
        if not redirect_uri or (redirect_uri not in registered if registered is not None else not loopback):
            return json_response(
                {"error": "invalid_request", "error_description": "bad or unregistered redirect_uri"}, 400
            )

        def reply(**params: str) -> Response:
            # RFC 9207: iss on every authorization response, errors included.
            params = {**params, **({"state": query["state"]} if "state" in query else {}), "iss": self.issuer}
            joined = "&".join(filter(None, [parts.query, urlencode(params)]))
            return RedirectResponse(urlunsplit(parts._replace(query=joined)), 302)

        user = query.get("login_hint") or self.opts.default_user
        if query.get("response_type") != "code":
            return reply(error="unsupported_response_type", error_description="only response_type=code")
        if not client.allows("authorization_code"):
            return reply(error="unauthorized_client", error_description="client may not use authorization_code")
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            return reply(error="invalid_request", error_description="PKCE with code_challenge_method=S256 is required")
        if user not in self.opts.users:
            return reply(error="access_denied", error_description=f"unknown user {user!r}")
        try:
            resources = check_resources(query.getlist("resource"))
        except OAuthError as exc:
            return reply(error=exc.error, error_description=exc.description)
        code = secrets.token_urlsafe(32)
        self.codes[code] = Grant(
            client.client_id,
            user,
            query.get("scope") or client.scope or DEFAULT_SCOPE,
            resources,
            redirect_uri,
            "redirect_uri" in query,
            query["code_challenge"],
            time.time() + CODE_TTL,
        )
        return reply(code=code)

    @oauth_errors
    async def token(self, request: Request) -> Response:
        form = await self.read_form(request)
        presented = self.credentials(request, form)
        grant_type = form.get("grant_type", [""])[0]
        fields = {k: one_or_list(v) for k, v in form.items() if k not in ("client_secret", "code_verifier")}
        entry = {**fields, "grant_type": grant_type, "client_id": presented[0], "auth": presented[2]}
        self.requests.append(entry)
        self.record({"path": "/token", **entry})

        def param(name: str, required: bool = False) -> str | None:
            value = form.get(name, [None])[0]
            if required and not value:
                raise OAuthError("invalid_request", f"missing {name}")
            return value

        if grant_type not in GRANTS:
            raise OAuthError(
                "unsupported_grant_type" if grant_type else "invalid_request", f"grant_type {grant_type!r}"
            )
        confidential = grant_type in ("client_credentials", TOKEN_EXCHANGE)
        client = self.authenticate(presented, confidential=confidential)
        if not client.allows(grant_type):
            raise OAuthError("unauthorized_client", f"client may not use {grant_type}")
        resources = check_resources(form.get("resource", []))
        scope = param("scope")
        if grant_type == "authorization_code":
            grant = self.codes.pop(param("code", True) or "", None)  # single use, even when what follows fails
            if grant is None or grant.expires < time.time() or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown, used, expired or foreign authorization code")
            redirect_uri = param("redirect_uri")
            if (redirect_uri or grant.redirect_given) and redirect_uri != grant.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
            verifier = param("code_verifier", True) or ""
            if not hmac.compare_digest(b64url(hashlib.sha256(verifier.encode()).digest()), grant.challenge):
                raise OAuthError("invalid_grant", "PKCE verification failed")
            return self.grant_response(client, grant, narrow(resources, grant.resources, "invalid_target"))
        if grant_type == "refresh_token":
            grant = self.refresh.get(param("refresh_token", True) or "")
            if grant is None or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "unknown, revoked, rotated or foreign refresh token")
            scopes = narrow(scope.split() if scope else [], grant.scope.split(), "invalid_scope")
            resources = narrow(resources, grant.resources, "invalid_target")
            del self.refresh[form["refresh_token"][0]]  # rotation, only once the request is good
            return self.grant_response(client, grant, resources, " ".join(scopes))
        if grant_type == "client_credentials":
            scope = scope or client.scope or DEFAULT_SCOPE
            token = self.access_token(client.client_id, client.client_id, scope, resources, {})
            return self.token_response(token, scope)
        # Token exchange (RFC 8693): the authenticated client acts on behalf of the subject token's subject.
        if param("subject_token_type", True) not in SUBJECT_TOKEN_TYPES:
            raise OAuthError("invalid_request", "unsupported subject_token_type")
        if param("requested_token_type") not in (None, ACCESS_TOKEN_TYPE):
            raise OAuthError("invalid_request", "only access tokens are issued")
        subject = self.active_claims(param("subject_token", True) or "")
        if subject is None:
            raise OAuthError("invalid_grant", "subject_token is not active")
        audience = form.get("audience", []) + resources
        if not audience:
            raise OAuthError("invalid_request", "audience or resource is required")
        extra = {k: v for k, v in subject.items() if k not in REGISTERED_CLAIMS}
        act = {"sub": client.client_id, **({"act": subject["act"]} if "act" in subject else {})}
        scope = scope or subject.get("scope") or DEFAULT_SCOPE
        token = self.access_token(client.client_id, str(subject.get("sub")), scope, audience, extra, act)
        return self.token_response(token, scope, issued_token_type=ACCESS_TOKEN_TYPE)

    def grant_response(self, client: Client, grant: Grant, resources: list[str], scope: str | None = None) -> Response:
        scope = scope or grant.scope
        extra = self.opts.users.get(grant.user, {})
        token = self.access_token(client.client_id, grant.user, scope, resources, extra)
        refresh = None
        if client.allows("refresh_token"):
            refresh = secrets.token_urlsafe(32)
            # The refresh token keeps the original grant, so a narrowed refresh can widen back later.
            self.refresh[refresh] = Grant(client.client_id, grant.user, grant.scope, grant.resources)
        return self.token_response(token, scope, refresh_token=refresh)

    def token_response(self, token: str, scope: str, **extra: str | None) -> Response:
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.opts.token_ttl, "scope": scope}
        body.update({k: v for k, v in extra.items() if v is not None})
        return json_response(body, headers={"cache-control": "no-store", "pragma": "no-cache"})

    @oauth_errors
    async def introspect(self, request: Request) -> Response:
        form = await self.read_form(request)
        presented = self.credentials(request, form)
        token = form.get("token", [""])[0]
        self.record({"path": "/introspect", "client_id": presented[0], "auth": presented[2], "token": token})
        self.authenticate(presented, confidential=True)
        claims = self.active_claims(token)
        if claims is None:
            return json_response({"active": False})
        return json_response({**claims, "active": True, "token_type": "Bearer"})

    @oauth_errors
    async def revoke(self, request: Request) -> Response:
        form = await self.read_form(request)
        self.authenticate(self.credentials(request, form), confidential=False)
        token = form.get("token", [""])[0]
        if not token:
            raise OAuthError("invalid_request", "missing token")
        self.refresh.pop(token, None)
        self.opaque.pop(token, None)
        self.revoked.add(token)
        return Response(status_code=200)

    @oauth_errors
    async def register(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise OAuthError("invalid_client_metadata", "body must be JSON") from exc
        if not isinstance(body, dict):
            raise OAuthError("invalid_client_metadata", "body must be a JSON object")
        method = body.get("token_endpoint_auth_method") or "client_secret_basic"
        if method not in AUTH_METHODS:
            raise OAuthError("invalid_client_metadata", f"unsupported token_endpoint_auth_method {method!r}")
        grant_types = body.get("grant_types") or ["authorization_code", "refresh_token"]
        redirect_uris = body.get("redirect_uris") or []
        if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types):
            raise OAuthError("invalid_client_metadata", "grant_types must be a list of strings")
        if not isinstance(redirect_uris, list) or not all(isinstance(u, str) for u in redirect_uris):
            raise OAuthError("invalid_redirect_uri", "redirect_uris must be a list of strings")
        if "authorization_code" in grant_types and not redirect_uris:
            raise OAuthError("invalid_redirect_uri", "authorization_code needs redirect_uris")
        # RFC 6749 §3.1.2: absolute, no fragment (private-use schemes of native apps are fine).
        if not all(urlsplit(uri).scheme and "#" not in uri for uri in redirect_uris):
            raise OAuthError("invalid_redirect_uri", "redirect_uris must be absolute URIs without fragment")
        secret = None if method == "none" else secrets.token_urlsafe(24)
        client = Client(f"dcr-{secrets.token_hex(8)}", secret, redirect_uris, grant_types, body.get("scope"))
        self.clients[client.client_id] = client
        answer = {
            **body,
            "client_id": client.client_id,
            "client_id_issued_at": int(time.time()),
            "token_endpoint_auth_method": method,
            "grant_types": grant_types,
            "redirect_uris": redirect_uris,
            "response_types": body.get("response_types") or ["code"],
        }
        if secret is not None:
            answer.update(client_secret=secret, client_secret_expires_at=0)
        return json_response(answer, 201, headers={"cache-control": "no-store"})

    # -- test-only helpers ----------------------------------------------------------------------------

    async def mint(self, request: Request) -> Response:
        try:
            spec = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            spec = None
        if not isinstance(spec, dict):
            return json_response({"error": "body must be a JSON object"}, 400)
        asked: dict[str, Any] = spec.get("claims") or {}
        sub = asked.get("sub", self.opts.default_user)
        now = int(time.time())
        defaults = {
            **(self.opts.users.get(sub, {}) if isinstance(sub, str) else {}),
            "iss": self.issuer,
            "sub": sub,
            "aud": self.opts.audience or MINT_CLIENT,
            "exp": now + self.opts.token_ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_hex(16),
            "scope": DEFAULT_SCOPE,
            "client_id": MINT_CLIENT,
        }
        claims = {k: v for k, v in {**defaults, **asked}.items() if k not in (spec.get("omit") or [])}
        header: dict[str, Any] = spec.get("header") or {}
        mode = spec.get("sign", "current")
        if spec.get("opaque"):
            token = f"opaque-{secrets.token_urlsafe(24)}"
            self.opaque[token] = claims
        elif mode == "none":
            unsecured = {"alg": "none", "typ": "JWT", **header}
            token = f"{b64url(orjson.dumps(unsecured))}.{b64url(orjson.dumps(claims))}."
        elif mode in ("current", "tampered", "unknown"):
            if mode == "unknown" and self.unknown_key is None:
                self.unknown_key = RSAKey.generate_key(2048, parameters={"kid": "unknown-kid"}, private=True)
            try:
                token = self.sign(claims, header, self.unknown_key if mode == "unknown" else None)
            except Exception as exc:  # a header joserfc cannot sign with (e.g. alg ES256 on an RSA key)
                return json_response({"error": f"cannot sign: {exc}"}, 400)
            if mode == "tampered":
                head, _, signature = token.split(".")
                altered = {**claims, **(spec.get("tamper") or {"tampered": True})}
                token = f"{head}.{b64url(orjson.dumps(altered))}.{signature}"
        else:
            return json_response({"error": f"unknown sign mode {mode!r}"}, 400)
        return json_response({"token": token})

    async def rotate(self, request: Request) -> Response:
        kid = f"k{len(self.keys) + 1}"
        self.keys.append(RSAKey.generate_key(2048, parameters={"kid": kid}, private=True))
        return json_response({"kid": kid})

    async def list_requests(self, request: Request) -> Response:
        return json_response(self.requests)


# -- command line ---------------------------------------------------------------------------------------


def parse_user(spec: str) -> tuple[str, dict[str, Any]]:
    name, *pairs = spec.split(":")
    claims: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--user {spec!r}: expected NAME:claim=value:...")
        claims[key] = [v for v in value.split(",") if v] if "," in value else value
    return name, claims


def parse_client(spec: str) -> Client:
    client_id, sep, secret = spec.partition(":")
    if not sep or not client_id or not secret:
        raise argparse.ArgumentTypeError(f"--client {spec!r}: expected ID:SECRET")
    return Client(client_id, secret)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Small OAuth 2 authorization server for gateway tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record")
    parser.add_argument("--client", type=parse_client, action="append", default=[], dest="clients")
    parser.add_argument("--user", type=parse_user, action="append", default=[], dest="users")
    parser.add_argument("--default-user", default="alice")
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument("--audience")
    args = parser.parse_args(argv)
    return Options(
        args.port, args.record, args.clients, dict(args.users), args.default_user, args.token_ttl, args.audience
    )


async def serve(server: uvicorn.Server, sock: socket.socket, issuer: str) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        print(f"READY {issuer}", flush=True)
    await task


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", opts.port))
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = OAuthServer(opts, issuer).app()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
    # uvicorn re-raises the signal it caught once shut down; these no-op handlers make that a clean exit 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    asyncio.run(serve(uvicorn.Server(config), sock, issuer))


if __name__ == "__main__":
    main()
