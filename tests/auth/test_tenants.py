"""Tenant rules: an issuer pinned to a tenant wins, then the tenant claim, then groups, then the default."""

from __future__ import annotations

from mcp_gateway.auth.tenants import TenantResolver
from mcp_gateway.config.model import TenantRules


def test_tenant_rules_in_order():
    rules = TenantResolver(TenantRules(groups={"eng-team": "engineering", "helpdesk": "support"}, default="guests"))
    assert rules.resolve({"tenant": "acme"}, None) == "acme"
    assert rules.resolve({"tenant": "acme"}, "partner") == "partner"  # a partner's server cannot claim ours
    assert rules.resolve({"groups": ["other", "helpdesk"]}, None) == "support"
    assert rules.resolve({"groups": "eng-team other"}, None) == "engineering"
    assert rules.resolve({"groups": ["nobody"]}, None) == "guests"
    assert TenantResolver(TenantRules()).resolve({"sub": "x"}, None) is None  # no rule, no default: refused
    assert TenantResolver(TenantRules(claim="org")).resolve({"org": "o1", "tenant": "t1"}, None) == "o1"
