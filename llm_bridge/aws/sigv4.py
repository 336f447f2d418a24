"""AWS Signature Version 4, header form, with hashlib and hmac only.

`sign` returns the headers to add to a request. It signs the URL exactly as it will be sent: the path must
already be percent-encoded the way the service expects (for Bedrock, `uri_encode(model_id)` turns the ':' of
a model id into `%3A`), and the canonical path is that wire path URI-encoded once more, so `%3A` is signed as
`%253A`. That double encoding is what AWS requires of every service but S3, and what botocore does.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"

# Hop-by-hop and tracing headers that proxies add, change or drop on the way: signing them would break the
# signature in transit (botocore leaves out the same set).
UNSIGNED_HEADERS = frozenset(
    {
        "authorization",
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


def uri_encode(value: str) -> str:
    """Percent-encode one path segment or query component: everything but A-Z a-z 0-9 - _ . ~ (RFC 3986)."""
    return quote(value, safe="-_.~")


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    region: str,
    service: str,
    access_key: str,
    secret_key: str,
    session_token: str | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to add to the request: authorization, x-amz-date, x-amz-content-sha256, and
    x-amz-security-token when a session token is given. Signs host plus every given header."""
    when = now or datetime.now(UTC)
    if when.tzinfo is not None:  # a naive datetime is taken as UTC already
        when = when.astimezone(UTC)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(body).hexdigest()
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    if session_token:
        added["x-amz-security-token"] = session_token

    signed = _headers_to_sign(url, headers, added)
    creq = canonical_request(method, url, signed, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = _signing_key(secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(sorted(signed))}, Signature={signature}"
    )
    return added


def canonical_request(method: str, url: str, signed_headers: dict[str, str], payload_hash: str) -> str:
    """The canonical request of SigV4 (exposed for tests and debugging: AWS's error message quotes it)."""
    parts = urlsplit(url)
    names = sorted(signed_headers)
    return "\n".join(
        [
            method.upper(),
            canonical_path(parts.path),
            canonical_query(parts.query),
            "".join(f"{n}:{signed_headers[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )


def canonical_path(path: str) -> str:
    """The wire path with dot segments and empty segments removed, then URI-encoded once more ('/' kept)."""
    segments: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if segments:
                segments.pop()
        elif seg and seg != ".":
            segments.append(seg)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return quote(normalized, safe="/~")


def canonical_query(query: str) -> str:
    """Each name and value decoded then encoded the SigV4 way (so the form sent does not matter), sorted."""
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        name, _, value = item.partition("=")
        pairs.append((uri_encode(unquote(name)), uri_encode(unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _headers_to_sign(url: str, headers: dict[str, str], added: dict[str, str]) -> dict[str, str]:
    """Lower-cased names to whitespace-trimmed values; host taken from the URL unless given."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lname = name.lower().strip()
        if lname not in UNSIGNED_HEADERS:
            out[lname] = " ".join(str(value).split())
    out.update(added)
    out.setdefault("host", _host(url))
    return out


def _host(url: str) -> str:
    """The Host header an HTTP client sends: lower-case, default port left out, IPv6 in brackets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


@lru_cache(maxsize=64)
def _signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    # The derived key depends only on these four and stays valid all day: four HMACs saved per request.
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
