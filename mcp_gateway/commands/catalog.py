"""`mcp-gateway catalog`: connect to the upstreams and print the federated catalog."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ..config import load_config
from ..logs import setup_logging


def catalog(args: argparse.Namespace) -> int:
    from ..assembly import build_gateway

    setup_logging(args.log_level)
    config = load_config(args.config)

    async def run() -> dict[str, Any]:
        gateway = build_gateway(config, prometheus=False)
        await gateway.start_upstreams()
        try:
            snapshot = gateway.catalog.snapshot
            return {
                "upstreams": {n: h.health.state for n, h in gateway.pool.handles.items()},
                "tools": [
                    {"name": e.exposed, "upstream": e.upstream, "description": e.definition.get("description", "")}
                    for e in snapshot.lists["tools"]
                ],
                "prompts": [{"name": e.exposed, "upstream": e.upstream} for e in snapshot.lists["prompts"]],
                "resources": [{"uri": e.exposed, "upstream": e.upstream} for e in snapshot.lists["resources"]],
                "resourceTemplates": [
                    {"uriTemplate": e.exposed, "upstream": e.upstream} for e in snapshot.lists["resourceTemplates"]
                ],
                "collisions": [str(c) for c in snapshot.collisions],
            }
        finally:
            await gateway.stop()

    data = asyncio.run(run())
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    rows = [(t["name"], t["upstream"], t["description"]) for t in data["tools"]]
    _print_table(["NAME", "UPSTREAM", "DESCRIPTION"], rows)
    for kind, key in (("prompts", "name"), ("resources", "uri"), ("resourceTemplates", "uriTemplate")):
        if data[kind]:
            print()
            _print_table([kind.upper(), "UPSTREAM", ""], [(i[key], i["upstream"], "") for i in data[kind]])
    down = [n for n, s in data["upstreams"].items() if s != "ready"]
    print(f"\n{len(data['tools'])} tools from {len(data['upstreams']) - len(down)} upstream(s)", end="")
    print(f"; not reachable: {', '.join(down)}" if down else "")
    for collision in data["collisions"]:
        print(f"warning: {collision}")
    return 1 if down else 0


def _print_table(header: list[str], rows: list[tuple[str, str, str]]) -> None:
    width0 = max([len(header[0])] + [len(r[0]) for r in rows])
    width1 = max([len(header[1])] + [len(r[1]) for r in rows])
    print(f"{header[0]:<{width0}}  {header[1]:<{width1}}  {header[2]}".rstrip())
    for name, upstream, description in rows:
        first_line = (description or "").strip().splitlines()[0] if description and description.strip() else ""
        if len(first_line) > 70:
            first_line = first_line[:67] + "..."
        print(f"{name:<{width0}}  {upstream:<{width1}}  {first_line}".rstrip())
