"""Which tenant a token belongs to, by the configured rules.

An issuer pinned to a tenant wins over anything its tokens claim (a second organisation's authorization
server must not be able to mint tokens for the first's tenant); then a tenant claim, then a group
mapping, then the default.
"""

from __future__ import annotations

from typing import Any

from ..config.auth import TenantRules


class TenantResolver:
    def __init__(self, rules: TenantRules) -> None:
        self._rules = rules

    def resolve(self, claims: dict[str, Any], issuer_tenant: str | None) -> str | None:
        if issuer_tenant is not None:
            return issuer_tenant
        rules = self._rules
        if rules.claim:
            value = claims.get(rules.claim)
            if isinstance(value, str) and value:
                return value
        if rules.groups:
            groups = claims.get(rules.groups_claim)
            if isinstance(groups, str):
                groups = groups.split()
            if isinstance(groups, list):
                for group in groups:
                    tenant = rules.groups.get(group) if isinstance(group, str) else None
                    if tenant is not None:
                        return tenant
        return rules.default
