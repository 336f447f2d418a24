"""The policy's decision cache against what clients can name: long targets are keyed by a digest, and
the whole cache stays within its byte budget however many distinct targets are decided."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from mcp_gateway.auth.principal import Principal
from mcp_gateway.policy import load_policies
from mcp_gateway.policy.plans import BUDGET, MAX_KEYED_NAME, keyed_name

MIB = 1024 * 1024
POLICY = """tenants: ['*']
default: deny
rules:
  - {name: public, effect: allow, targets: {resources: ['file://pub/*']}}
  - {name: no-secrets, effect: deny, targets: {resources: ['*secret*']}}
"""


def _engine(tmp_path: Path):
    (tmp_path / "policy.yaml").write_text(POLICY)
    return load_policies(tmp_path)


def test_a_long_target_is_decided_as_before_but_keyed_by_its_digest(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    caller = Principal("t", "alice")
    long_allowed = "file://pub/" + "a" * (4 * MAX_KEYED_NAME)
    long_denied = "file://pub/" + "a" * (4 * MAX_KEYED_NAME) + "secret"
    for _ in range(2):  # decided, then served from the cache: the same answers
        assert engine.decide(caller, "resources", long_allowed, "up", None).allowed
        denied = engine.decide(caller, "resources", long_denied, "up", None)
        assert not denied.allowed and denied.rule == "no-secrets"
    assert keyed_name("file://pub/x") == "file://pub/x"
    assert keyed_name(long_allowed) != keyed_name(long_denied) and len(keyed_name(long_allowed)) == 32


def test_distinct_targets_never_make_the_cache_outgrow_its_budget(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    caller = Principal("t", "alice")
    count, size = 60_000, MAX_KEYED_NAME - 24  # long, yet short enough to be keyed as sent
    kept_if_unbounded = count * size / MIB
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for index in range(count):
            engine.decide(caller, "resources", f"file://priv/{index:010d}".ljust(size, "x"), "up", None)
        peak = (tracemalloc.get_traced_memory()[1] - start) / MIB
    finally:
        tracemalloc.stop()
    print(
        f"{count} distinct {size}-character targets: at most +{peak:.1f} MiB (the names: {kept_if_unbounded:.0f} MiB)"
    )
    assert peak < BUDGET / MIB * 1.25
