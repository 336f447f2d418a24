"""Other spellings of a base64url token that a lenient decoder reads as the same bytes."""

from __future__ import annotations

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respellings(token: str) -> dict[str, str]:
    """Name -> a non-canonical spelling of the unpadded base64url `token` (RFC 4648 §5, §3.5)."""
    variants = {
        "padded": token + "=" * (-len(token) % 4 or 4),
        "over-padded": token + "=" * (-len(token) % 4 + 4),
        "stray characters": token[:8] + "...." + token[8:],  # outside the alphabet: dropped by lenient decoders
    }
    standard = token.replace("-", "+").replace("_", "/")
    if standard != token:
        variants["standard alphabet"] = standard
    if (len(token) * 6) % 8:  # the last character has bits that carry no data; canonical: zero
        variants["non-zero trailing bits"] = token[:-1] + ALPHABET[ALPHABET.index(token[-1]) | 1]
    return variants
