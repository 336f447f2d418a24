"""`mcp-gateway` command line: serve, stdio, catalog, config check, config schema."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError, GatewayConfig, load_config
from .logs import setup_logging
from .version import __version__

log = logging.getLogger("mcp_gateway")

STDIO_KEY_ENV = "MCP_GATEWAY_API_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"error: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-gateway", description="One MCP endpoint for many MCP servers.")
    parser.add_argument("--version", action="version", version=f"mcp-gateway {__version__}")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="serve MCP over streamable HTTP")
    serve.add_argument("--config", "-c", required=True, help="path to gateway.yaml")
    serve.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=_serve)

    stdio = commands.add_parser("stdio", help="serve MCP over stdin/stdout (for Claude Desktop)")
    stdio.add_argument("--config", "-c", required=True)
    stdio.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    stdio.set_defaults(handler=_stdio)

    catalog = commands.add_parser("catalog", help="connect to the upstreams and print the federated catalog")
    catalog.add_argument("--config", "-c", required=True)
    catalog.add_argument("--json", action="store_true", help="print JSON instead of a table")
    catalog.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    catalog.set_defaults(handler=_run("catalog", "catalog"))

    auth = commands.add_parser("auth", help="API keys for `auth.api_keys`")
    auth_commands = auth.add_subparsers(dest="auth_command", required=True)
    new_key = auth_commands.add_parser("new-key", help="generate an API key and print it with its config entry")
    new_key.add_argument("--tenant", required=True)
    new_key.add_argument("--subject", required=True)
    new_key.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    new_key.set_defaults(handler=_auth_new_key)
    hash_key = auth_commands.add_parser("hash-key", help="print the sha256 of an existing key (read from stdin)")
    hash_key.set_defaults(handler=_auth_hash_key)

    policy = commands.add_parser("policy", help="check policy files, explain a decision, print the schema")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    policy_check = policy_commands.add_parser("check", help="validate a policy directory")
    policy_check.add_argument("dir")
    policy_check.set_defaults(handler=_run("policy", "check"))
    explain = policy_commands.add_parser("explain", help="the decision for one caller and target, with the rules")
    explain.add_argument("dir", nargs="?", default="policies", help="policy directory (default: policies)")
    explain.add_argument("--tenant", required=True)
    explain.add_argument("--subject", default="someone")
    explain.add_argument("--scope", action="append", default=[], help="a scope the caller holds (repeatable)")
    explain.add_argument("--claims", default="{}", help="the caller's claims as JSON")
    target = explain.add_mutually_exclusive_group(required=True)
    target.add_argument("--tool")
    target.add_argument("--prompt")
    target.add_argument("--resource", help="a resource URI")
    target.add_argument("--model")
    explain.add_argument("--upstream", help="the target's upstream (default: the tool/prompt name's prefix)")
    explain.add_argument("--args", default="{}", help="the call's arguments as JSON")
    explain.set_defaults(handler=_run("policy", "explain"))
    policy_schema = policy_commands.add_parser("schema", help="print the JSON Schema of policy files")
    policy_schema.set_defaults(handler=_run("policy", "schema"))

    llm = commands.add_parser("llm", help="the LLM section: prices for Arize Phoenix")
    llm_commands = llm.add_subparsers(dest="llm_command", required=True)
    prices = llm_commands.add_parser(
        "prices", help="print llm.prices as Phoenix model costs, or push them to a Phoenix (--phoenix URL)"
    )
    prices.add_argument("--config", "-c", required=True)
    prices.add_argument("--phoenix", help="Phoenix base URL, e.g. http://127.0.0.1:6006: create/update its models")
    prices.add_argument("--api-key-env", default="PHOENIX_API_KEY", help="variable holding a Phoenix API key")
    prices.set_defaults(handler=_run("llm", "prices"))

    config = commands.add_parser("config", help="check a config file or print its JSON Schema")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a gateway.yaml")
    check.add_argument("file")
    check.set_defaults(handler=_config_check)
    schema = config_commands.add_parser("schema", help="print the JSON Schema of gateway.yaml")
    schema.set_defaults(handler=_config_schema)
    return parser


def _run(module: str, name: str):  # type: ignore[no-untyped-def]
    """A subcommand's handler, imported when it runs (the CLI starts fast)."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(f".commands.{module}", __package__), name)(args))

    return handler


def _with_overrides(config: GatewayConfig, host: str | None, port: int | None) -> GatewayConfig:
    updates: dict[str, Any] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if not updates:
        return config
    return config.model_copy(update={"server": config.server.model_copy(update=updates)})


def _serve(args: argparse.Namespace) -> int:
    from .app import CONFIG_ENV, create_app
    from .assembly import SECRET_ENV
    from .serving import serve_one, serve_workers, uvicorn_options

    setup_logging(args.log_level)
    config = _with_overrides(load_config(args.config), args.host, args.port)
    auth = config.auth
    if auth is None or not (auth.allow_anonymous or auth.issuers or auth.api_keys):
        print(
            f"error: {args.config}: nothing authenticates callers. Configure `auth.issuers` (OAuth) or "
            "`auth.api_keys`, or set `auth: {allow_anonymous: true}` for local development.",
            file=sys.stderr,
        )
        return 2
    options = uvicorn_options(config, args.log_level)
    host, port = config.server.host, config.server.port
    log.info("mcp-gateway %s listening on http://%s:%d%s", __version__, host, port, config.server.path)
    if args.workers > 1:
        if port == 0:
            print("error: --workers needs a fixed port (every worker binds the same one)", file=sys.stderr)
            return 2
        # Workers read the config file and share a session key so any of them can serve any session.
        os.environ[CONFIG_ENV] = str(Path(args.config).resolve())
        os.environ["MCP_GATEWAY_PORT"] = str(port)
        os.environ.setdefault(SECRET_ENV, config.server.session_secret or secrets.token_urlsafe(32))
        if config.state.backend == "memory":
            log.warning(
                "--workers %d with the memory state backend: every worker serves every session, but list "
                "changes, a client's answers to server requests and input_required retries stay inside the "
                "worker that got them; set `state: {backend: redis}` to share them",
                args.workers,
            )
        return serve_workers(args.workers, options, config.server.drain_timeout)
    serve_one(create_app(config, port=port), options)
    return 0


def _auth_new_key(args: argparse.Namespace) -> int:
    key = "mgw_" + secrets.token_urlsafe(32)
    entry = {"sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": args.tenant, "subject": args.subject}
    if args.scope:
        entry["scopes"] = args.scope
    print(f"key (give it to the client; it is not stored anywhere): {key}")
    print("config entry for auth.api_keys:")
    print(json.dumps(entry))
    return 0


def _auth_hash_key(_args: argparse.Namespace) -> int:
    key = sys.stdin.readline().strip()
    if not key:
        print("error: no key on stdin", file=sys.stderr)
        return 2
    print(hashlib.sha256(key.encode()).hexdigest())
    return 0


def _stdio(args: argparse.Namespace) -> int:
    from .assembly import build_gateway
    from .front.stdio import serve_stdio
    from .policy import PolicyError

    setup_logging(args.log_level)
    config = load_config(args.config)

    async def run() -> int:
        gateway = build_gateway(config, prometheus=False)  # no /metrics to serve on stdio
        try:
            await gateway.start()
        except PolicyError as exc:
            print(f"error: invalid policy\n{exc}", file=sys.stderr)
            await gateway.stop()
            return 2
        try:
            principal = await _stdio_principal(gateway)
            if principal is None:
                return 2
            await serve_stdio(gateway.pipeline, gateway.watches, gateway.sync, principal)
        finally:
            await gateway.stop()
        return 0

    return asyncio.run(run())


async def _stdio_principal(gateway: Any) -> Any:
    """Who the stdio client is: the caller an API key in MCP_GATEWAY_API_KEY names (so policies and limits
    per tenant apply as over HTTP), else the local operator in the anonymous tenant."""
    from .assembly import local_principal
    from .auth import AuthError

    key = os.environ.get(STDIO_KEY_ENV)
    if not key:
        return local_principal(gateway.config)
    if gateway.authenticator is None:
        print(f"error: {STDIO_KEY_ENV} is set but the config has no auth.api_keys to check it", file=sys.stderr)
        return None
    try:
        return await gateway.authenticator.authenticate(None, key.encode())
    except AuthError as exc:
        print(f"error: {STDIO_KEY_ENV}: {exc.description}", file=sys.stderr)
        return None


def _config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    kinds: dict[str, int] = {}
    for upstream in config.upstreams.values():
        kinds[upstream.transport] = kinds.get(upstream.transport, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no upstreams"
    print(f"{args.file}: ok ({len(config.upstreams)} upstream(s): {summary})")
    print(f"auth: {_auth_summary(config)}")
    if config.llm is not None:
        llm = config.llm
        backends = ", ".join(f"{name}={backend.provider}" for name, backend in llm.backends.items()) or "none"
        line = f"llm: {len(llm.backends)} backend(s) ({backends}), {len(llm.models)} model route(s)"
        if llm.sampling_model:
            line += f", MCP sampling answered with '{llm.sampling_model}'"
        print(line)
    return 0


def _auth_summary(config: GatewayConfig) -> str:
    auth = config.auth
    if auth is None or not (auth.allow_anonymous or auth.issuers or auth.api_keys):
        return "none configured: `serve` will refuse to start (set auth.issuers, auth.api_keys or allow_anonymous)"
    parts = [f"{len(auth.issuers)} OAuth issuer(s)", f"{len(auth.api_keys)} API key(s)"]
    if auth.allow_anonymous:
        parts.append("ANONYMOUS callers allowed (local development)")
    return ", ".join(parts)


def _config_schema(args: argparse.Namespace) -> int:
    schema = GatewayConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mcp-gateway gateway.yaml"
    print(json.dumps(schema, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
