"""What every HTTP request passes before any route sees it: DNS-rebinding protection (Host and Origin
allow-lists) and, for the JSON endpoints, no request a browser could send cross-site without a CORS
preflight (the CORS-safelisted content types: text/plain, form encodings)."""

from __future__ import annotations

from dataclasses import dataclass

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Fetch's CORS-safelisted request content types: a page on any site may POST these without a preflight.
_SIMPLE_TYPES = (b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data")


@dataclass(frozen=True, slots=True)
class OriginGuard:
    allowed_hosts: frozenset[str] | None  # None: any Host
    allowed_origins: frozenset[str] | None  # None: any Origin

    @classmethod
    def for_bind(
        cls, host: str, port: int, allowed_hosts: list[str] | None, allowed_origins: list[str] | None
    ) -> OriginGuard:
        """Explicit lists win; otherwise a loopback bind only accepts loopback names (the rebinding case)."""
        if allowed_hosts is None and host in ("127.0.0.1", "localhost", "::1"):
            allowed_hosts = [f"{h}:{port}" for h in _LOCAL_HOSTS] + list(_LOCAL_HOSTS)
        if allowed_origins is None and host in ("127.0.0.1", "localhost", "::1"):
            allowed_origins = [f"http://{h}:{port}" for h in _LOCAL_HOSTS] + [f"http://{h}" for h in _LOCAL_HOSTS]
        return cls(
            frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None,
            frozenset(o.lower().rstrip("/") for o in allowed_origins) if allowed_origins is not None else None,
        )

    def check_request(self, method: str, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """None when the request may be served, else (HTTP status, reason)."""
        origin = headers.get(b"origin")
        rejected = self.check(_text(headers.get(b"host")), _text(origin))
        if rejected is not None or method != "POST":
            return rejected
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if content_type in _SIMPLE_TYPES or (not content_type and origin is not None):
            return 415, "Content-Type must be application/json"
        return None

    def check(self, host: str | None, origin: str | None) -> tuple[int, str] | None:
        """None when allowed, else (HTTP status, reason)."""
        if self.allowed_hosts is not None and (host is None or host.lower() not in self.allowed_hosts):
            return 421, "Invalid Host header"
        # Browsers send Origin; native clients usually do not, and that is fine.
        if (
            origin is not None
            and self.allowed_origins is not None
            and origin.lower().rstrip("/") not in self.allowed_origins
        ):
            return 403, "Invalid Origin header"
        return None


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
