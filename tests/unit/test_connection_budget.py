"""How many client connections a process may hold under its open-file limit (edge/fds.py)."""

from __future__ import annotations

from mcp_gateway.edge.fds import connection_budget, default_reserve


def test_the_default_reserve_is_a_quarter_of_the_limit_at_least_256_at_most_half():
    assert default_reserve(1_048_576) == 262_144
    assert default_reserve(20_000) == 5_000
    assert default_reserve(1024) == 256
    assert default_reserve(300) == 150


def test_the_cap_is_what_the_limit_leaves_after_open_descriptors_and_the_reserve():
    budget = connection_budget(None, None, nofile=20_000, open_now=20)
    assert (budget.max_connections, budget.reserve, budget.lowered_from) == (14_980, 5_000, None)
    assert connection_budget(200, 128, nofile=512, open_now=30).max_connections == 200


def test_a_configured_cap_that_does_not_fit_is_lowered_and_says_so():
    budget = connection_budget(50_000, 1000, nofile=4096, open_now=96)
    assert (budget.max_connections, budget.lowered_from) == (3000, 50_000)
    assert connection_budget(None, 10_000, nofile=4096, open_now=96).max_connections == 1
