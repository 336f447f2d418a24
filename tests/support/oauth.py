"""A real OAuth 2 authorization server process (tests/support/oauth_server.py) and helpers to use it."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import httpx

from tests.support.processes import SUPPORT, Proc

GATEWAY_CLIENT = ("gateway", "gateway-secret")  # the gateway's own confidential client


class AuthServer:
    def __init__(self, *extra: str) -> None:
        argv = [
            sys.executable,
            str(SUPPORT / "oauth_server.py"),
            "--client",
            ":".join(GATEWAY_CLIENT),
            "--user",
            "alice:tenant=eng:groups=eng",
            "--user",
            "bob:tenant=support:groups=support",
            *extra,
        ]
        self.proc = Proc(argv)
        self.issuer = self.proc.wait_for_line("READY").split()[1]

    def mint(self, sign: str = "current", omit: tuple[str, ...] = (), header: dict | None = None, **claims: Any) -> str:
        body = {"claims": claims, "omit": list(omit), "header": header or {}, "sign": sign}
        return httpx.post(f"{self.issuer}/test/mint", json=body).json()["token"]

    def mint_opaque(self, omit: tuple[str, ...] = (), **claims: Any) -> str:
        body = {"claims": claims, "omit": list(omit), "opaque": True}
        return httpx.post(f"{self.issuer}/test/mint", json=body).json()["token"]

    def revoke(self, token: str) -> None:
        httpx.post(f"{self.issuer}/revoke", data={"token": token}, auth=GATEWAY_CLIENT).raise_for_status()

    def rotate(self) -> str:
        return httpx.post(f"{self.issuer}/test/rotate").json()["kid"]

    def issuer_config(self, **extra: Any) -> dict[str, Any]:
        return {"issuer": self.issuer, **extra}

    def introspection(self) -> dict[str, str]:
        return {
            "endpoint": f"{self.issuer}/introspect",
            "client_id": GATEWAY_CLIENT[0],
            "client_secret": GATEWAY_CLIENT[1],
        }

    def stop(self) -> None:
        self.proc.kill()


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (for assertions about what an upstream received)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
