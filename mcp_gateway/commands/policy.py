"""`mcp-gateway policy check|explain|schema`: a policy directory validated, one decision explained."""

from __future__ import annotations

import argparse
import json
import sys


def check(args: argparse.Namespace) -> int:
    from ..policy import PolicyError, load_policies
    from ..policy.load import policy_files

    try:
        engine = load_policies(args.dir)
    except PolicyError as exc:
        print(f"error: invalid policy\n{exc}", file=sys.stderr)
        return 2
    print(f"{args.dir}: ok ({len(policy_files(args.dir))} file(s), {len(engine)} rule(s))")
    return 0


def explain(args: argparse.Namespace) -> int:
    from ..auth.principal import Principal
    from ..policy import PolicyError, load_policies

    try:
        engine = load_policies(args.dir)
        claims = json.loads(args.claims)
        call_args = json.loads(args.args)
    except PolicyError as exc:
        print(f"error: invalid policy\n{exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"error: --claims/--args must be JSON objects: {exc}", file=sys.stderr)
        return 2
    if not isinstance(claims, dict) or not isinstance(call_args, dict):
        print("error: --claims/--args must be JSON objects", file=sys.stderr)
        return 2
    kind, name = next(
        (k, v)
        for k, v in (
            ("tools", args.tool),
            ("prompts", args.prompt),
            ("resources", args.resource),
            ("models", args.model),
        )
        if v
    )
    upstream = args.upstream or (name.split("__", 1)[0] if kind in ("tools", "prompts") and "__" in name else None)
    principal = Principal(args.tenant, args.subject, frozenset(args.scope), claims)
    decision = engine.decide(principal, kind, name, upstream, call_args)
    verdict = "ALLOW" if decision.allowed else "DENY"
    print(f"{verdict} {kind[:-1]} {name} for tenant {args.tenant} (subject {args.subject})")
    print(f"  decided by: {decision.rule}")
    if not decision.allowed:
        how = (
            "it is listed, but this call is refused"
            if decision.visible
            else "it is hidden: lists omit it, calls find nothing"
        )
        print(f"  {how}: {decision.message}")
    print("  rules considered:" if decision.chain else "  no rule is about this caller and target")
    for line in decision.chain:
        print(f"    {line}")
    for limit in engine.limits_for(principal, kind, name, upstream):
        rate = f"1 per {limit.interval_ms / 1000:g}s after a burst of {limit.burst}" if limit.interval_ms else "no rate"
        slots = f", {limit.concurrency} at once" if limit.concurrency else ""
        print(f"  limit {limit.name} (per {limit.per}): {rate}{slots}")
    return 0 if decision.allowed else 1


def schema(_args: argparse.Namespace) -> int:
    from ..policy.model import PolicyFile

    schema = PolicyFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mcp-gateway policy file"
    print(json.dumps(schema, indent=2))
    return 0
