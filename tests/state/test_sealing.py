"""Sealed tokens: what the client carries for us must be unreadable, unforgeable and bound."""

from __future__ import annotations

from mcp_gateway.state.sealing import Sealer
from tests.support.respell import respellings


def test_round_trip_and_every_kind_of_tampering_is_refused():
    sealer = Sealer.from_secrets([(1, "secret")])
    token = sealer.seal({"v": "2025-11-25", "c": {"sampling": {}}}, b"session")
    assert sealer.open(token, b"session") == {"v": "2025-11-25", "c": {"sampling": {}}}
    assert "sampling" not in token  # encrypted, not merely signed
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert sealer.open(flipped, b"session") is None
    assert sealer.open(token + "-TAMPERED", b"session") is None
    assert sealer.open("garbage", b"session") is None
    assert sealer.open("", b"session") is None
    assert Sealer.from_secrets([(1, "other")]).open(token, b"session") is None


def test_a_token_is_bound_to_its_purpose_and_its_caller():
    sealer = Sealer.from_secrets([(1, "secret")])
    token = sealer.seal({"h": "x"}, b"session", b"tenant-a")
    assert sealer.open(token, b"session", b"tenant-a") == {"h": "x"}
    assert sealer.open(token, b"session", b"tenant-b") is None
    assert sealer.open(token, b"mrtr-state", b"tenant-a") is None


def test_keys_rotate_old_tokens_still_open_new_ones_use_the_new_key():
    old = Sealer.from_secrets([(1, "old secret")])
    rotated = Sealer.from_secrets([(2, "new secret"), (1, "old secret")])
    legacy_token = old.seal({"n": 1}, b"session")
    assert rotated.open(legacy_token, b"session") == {"n": 1}
    fresh = rotated.seal({"n": 2}, b"session")
    assert old.open(fresh, b"session") is None  # sealed with key 2, which the old ring lacks
    assert Sealer.from_secrets([(2, "new secret")]).open(fresh, b"session") == {"n": 2}
    # Retiring key 1 retires its tokens.
    assert Sealer.from_secrets([(2, "new secret")]).open(legacy_token, b"session") is None


def test_a_token_opens_only_in_the_one_spelling_seal_gives_it():
    # Lenient base64 reads each of these as the same bytes; whatever is keyed on the token string (the
    # tombstones of ended sessions) would then miss them. RFC 4648 §3.5: one canonical encoding.
    sealer = Sealer.from_secrets([(1, "secret")])
    seen: set[str] = set()
    for size in range(12):  # every remainder of the length mod 3, so every padding and trailing-bits case
        payload = {"x": "y" * size}
        token = sealer.seal(payload, b"session")
        assert sealer.open(token, b"session") == payload
        for name, variant in {**respellings(token), "newline": token[:5] + "\n" + token[5:]}.items():
            assert variant != token
            assert sealer.open(variant, b"session") is None, name
            seen.add(name)
    assert {"padded", "standard alphabet", "non-zero trailing bits", "stray characters"} <= seen
