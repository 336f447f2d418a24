"""Policy decision speed: `decide` per call with 1,000 rules, as the gateway calls it.

    python bench/policy_bench.py [--rules 1000] [--calls 100000]

Three numbers: a cached decision without conditions (the common case), a cached decision that evaluates
a CEL condition on the call's arguments, and the first decision for a new (caller, target), which walks
every rule once and is then cached.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp_gateway.auth.principal import Principal
from mcp_gateway.policy import load_policies


def write_rules(directory: Path, count: int) -> None:
    rules = []
    for i in range(count):
        effect = ("allow", "deny", "require")[i % 3] if i % 10 else "allow"
        rule = [
            f"  - name: r{i}",
            f"    effect: {effect}",
            f"    when: {{tenants: [t{i % 50}], scopes: [{'s' + str(i % 4) if effect == 'require' else ''}]}}",
            f'    targets: {{tools: ["up{i % 20}__tool_{i}*", "up{i % 20}__x{i}_*"]}}',
        ]
        if i % 7 == 0:
            rule.append(f"    condition: 'has(args.n) && args.n > {i % 5}'")
        rules.append("\n".join(rule))
    (directory / "rules.yaml").write_text("tenants: ['*']\ndefault: deny\nrules:\n" + "\n".join(rules) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_rules(Path(tmp), args.rules)
        engine = load_policies(tmp)
    caller = Principal("t7", "alice", frozenset({"s3"}))
    # t7 is covered by r7 (allow, with a condition), r57, r107, ...: a realistic caller of a big file.
    cases = {
        "cached, no condition": ("up17__tool_57", {}),
        "cached, CEL condition on the arguments": ("up7__tool_7", {"n": 4}),
    }
    print(f"{len(engine)} rules")
    for label, (tool, call_args) in cases.items():
        upstream = tool.split("__")[0]
        engine.decide(caller, "tools", tool, upstream, call_args)  # warm the cache
        started = time.perf_counter()
        for _ in range(args.calls):
            engine.decide(caller, "tools", tool, upstream, call_args)
        per_call = (time.perf_counter() - started) / args.calls * 1e6
        decided = engine.decide(caller, "tools", tool, upstream, call_args).rule
        print(f"  {label:<40} {per_call:7.2f} us/decision  -> {decided}")
    fresh = 2000
    started = time.perf_counter()
    for i in range(fresh):
        engine.decide(Principal(f"t{i % 50}", f"u{i}"), "tools", f"up{i % 20}__tool_{i}", f"up{i % 20}", {})
    print(f"  {'first decision for a new caller+target':<40} {(time.perf_counter() - started) / fresh * 1e6:7.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
