"""State the client carries for us: AEAD-sealed tokens (session ids, MRTR `requestState`).

A token is `base64url(key id ‖ nonce ‖ AES-GCM(payload))`, unpadded, and opens only in that one spelling
(see `_decode`), so the token string itself can key state such as ended sessions. The first key of the
keyring seals; every key opens, so keys rotate by adding a new one in front and dropping the old one once
its tokens have aged out. The associated data binds a token to its purpose and to the caller it was
issued to, so a session id cannot be replayed as a `requestState`, nor one principal's token by another.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
_TAG = 16
_DERIVATION_LABEL = b"mcp-gateway/sealed-token/v1\x00"


def derive_key(secret: str | bytes) -> bytes:
    """A 256-bit AES key from operator-supplied key material (a passphrase or random bytes)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(_DERIVATION_LABEL + raw).digest()


class Sealer:
    """Seals JSON payloads into opaque URL-safe tokens and opens them again."""

    def __init__(self, keys: Sequence[tuple[int, bytes]]) -> None:
        if not keys:
            raise ValueError("a sealer needs at least one key")
        for key_id, key in keys:
            if not 0 <= key_id <= 255:
                raise ValueError(f"key id {key_id} must be 0-255")
            if len(key) != 32:
                raise ValueError("keys must be 32 bytes")
        self._current = keys[0][0]
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def from_secrets(cls, secrets: Sequence[tuple[int, str]]) -> Sealer:
        """Keys from operator secrets, newest first; none means a random per-process key."""
        if not secrets:
            return cls([(1, os.urandom(32))])
        return cls([(key_id, derive_key(secret)) for key_id, secret in secrets])

    def seal(self, payload: dict[str, Any], purpose: bytes, bound_to: bytes = b"") -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self._current].encrypt(nonce, orjson.dumps(payload), purpose + b"\x00" + bound_to)
        return _encode(bytes([self._current]) + nonce + sealed)

    def open(self, token: str, purpose: bytes, bound_to: bytes = b"") -> dict[str, Any] | None:
        """The payload, or None for anything forged, tampered, sealed with an unknown key or for
        another purpose or caller."""
        raw = _decode(token)
        if raw is None or len(raw) < 1 + _NONCE + _TAG:
            return None
        aead = self._keys.get(raw[0])
        if aead is None:
            return None
        try:
            payload = orjson.loads(aead.decrypt(raw[1 : 1 + _NONCE], raw[1 + _NONCE :], purpose + b"\x00" + bound_to))
        except (InvalidTag, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None


def _encode(raw: bytes) -> str:
    """base64url without padding (RFC 4648 §5, as RFC 7515 §2 uses it)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(token: str) -> bytes | None:
    """The bytes of a token spelled exactly as `_encode` spells them, else None.

    Python's decoder is lenient: it drops characters outside the alphabet, takes `+`/`/` for `-`/`_`,
    ignores extra padding and non-zero trailing bits (which RFC 4648 §3.5 says canonical encoders set to
    zero). Each of those is another spelling of the same sealed bytes, and whatever is keyed on the token
    string (the ended-session tombstones) would miss it. Re-encoding and comparing leaves one spelling.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    return raw if _encode(raw) == token else None
