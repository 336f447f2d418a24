"""The official MCP conformance suite (server scenarios), through the gateway.

The project's everything-server (tests/support/everything_server.py) is the only upstream, with
prefixing off so the suite's fixture names survive. The suite is first run against that server
directly, so a failure through the gateway is the gateway's. `.ci/conformance.sh` installs Node 22 and
the suite into a cache on first use.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT, SUPPORT, Proc, free_port

SUITE_TIMEOUT = 600


@pytest.fixture(scope="module")
def everything_url() -> Iterator[str]:
    port = free_port()
    proc = Proc(
        [
            sys.executable,
            str(SUPPORT / "everything_server.py"),
            "--transport",
            "http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    )
    try:
        yield proc.wait_for_line("READY").split()[1]
    finally:
        proc.kill()


def run_suite(version: str, url: str, *args: str, scored_only: bool = False) -> str:
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "conformance.sh"), version, url, *args],
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    totals = re.findall(r"Total: (\d+) passed, (\d+) failed", output)
    assert totals, output[-3000:]
    passed, failed = map(int, totals[-1])
    assert passed > 0, output[-6000:]
    if not scored_only:
        assert failed == 0, output[-6000:]
    return output


def test_suite_passes_against_the_everything_server_directly(everything_url):
    run_suite("0.1.16", everything_url)


@pytest.mark.parametrize("upstream_era", ["auto", "2025-11-25"])
def test_suite_0_1_16_passes_through_the_gateway(everything_url, gateway, upstream_era):
    gw = gateway(
        {
            "upstreams": {
                "everything": {
                    "transport": "streamable_http",
                    "url": everything_url,
                    "prefixing": False,
                    "protocol": upstream_era,
                }
            }
        },
        upstreams_ready=1,
    )
    output = run_suite("0.1.16", gw.url)
    # Every default server scenario ran (not a suite that silently shrank).
    assert len(re.findall(r"^✓ ", output, re.MULTILINE)) >= 30, output[-3000:]


@pytest.mark.parametrize("requirements", ["2025-11-25", "2026-07-28"])
def test_alpha_12_requirement_sets_pass_through_the_gateway(everything_url, gateway, requirements):
    """Every scored scenario of each frozen requirement set (the 2026-07-28 set's `tasks-*` scenarios are
    an extension the suite does not score; the suite's exit status is what decides)."""
    gw = gateway(
        {"upstreams": {"everything": {"transport": "streamable_http", "url": everything_url, "prefixing": False}}},
        upstreams_ready=1,
    )
    output = run_suite("0.2.0-alpha.12", gw.url, "--requirements", requirements, scored_only=True)
    if requirements == "2026-07-28":
        for scenario in ("server-stateless", "caching", "http-header-validation", "input-required-result-multi-round"):
            assert re.search(rf"^✓ {scenario}: \d+ passed, 0 failed", output, re.MULTILINE), output[-3000:]
