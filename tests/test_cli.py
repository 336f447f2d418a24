"""The `mcp-gateway` command line as an operator uses it: config check/schema, catalog, stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import ElicitResult

from tests.support.client import CLIENT_ERAS, echo_of
from tests.support.processes import ROOT, scripted_stdio_args

MODES = {"legacy": "legacy", "modern": "2026-07-28"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_gateway", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )


def test_config_check_accepts_the_example():
    done = run_cli("config", "check", "examples/gateway.yaml")
    assert done.returncode == 0, done.stderr
    assert "examples/gateway.yaml: ok (3 upstream(s): 2 stdio, 1 streamable_http)" in done.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("upstreams:\n  a:\n    transport: stdio\n    comand: x\n", "bad.yaml:4: upstreams.a.comand: unknown key"),
        ("upstreams:\n  a:\n    transport: carrier\n", "bad.yaml:3: upstreams.a: transport must be one of"),
        (
            "upstreams:\n  a:\n    transport: streamable_http\n    url: ftp://x\n",
            "bad.yaml:4: upstreams.a.url: Value error, url must be an http:// or https:// URL",
        ),
        (
            "upstreams:\n  a:\n    transport: streamable_http\n    url: ${MISSING_URL_FOR_TEST}\n",
            "bad.yaml:4: upstreams.a.url: environment variable MISSING_URL_FOR_TEST is not set",
        ),
        ("server:\n  port: [1\n", "bad.yaml:3: invalid YAML"),
        ("server:\n  port: -1\n", "bad.yaml:2: server.port: Input should be greater than or equal to 0"),
        (
            "upstreams:\n  a: {transport: stdio, command: x, prefix: p}\n  b: {transport: stdio, command: y, prefix: p}\n",
            "upstreams 'a' and 'b' share the prefix 'p'",
        ),
        ("upstreams:\n  'bad name': {transport: stdio, command: x}\n", "upstream name 'bad name' must match"),
    ],
)
def test_config_check_names_file_line_key_and_reason(tmp_path: Path, text: str, expected: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    done = run_cli("config", "check", str(bad))
    assert done.returncode == 2
    assert expected in done.stderr.replace(str(tmp_path) + "/", ""), done.stderr


def test_serve_with_a_bad_config_exits_non_zero_with_the_reason(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  prot: 1\n")
    done = run_cli("serve", "--config", str(bad))
    assert done.returncode == 2
    assert "server.prot: unknown key" in done.stderr


def test_missing_config_file_is_reported():
    done = run_cli("config", "check", "/nonexistent/gateway.yaml")
    assert done.returncode == 2 and "cannot read" in done.stderr


def test_env_interpolation_fills_secrets(tmp_path: Path):
    good = tmp_path / "g.yaml"
    good.write_text(
        "upstreams:\n  a:\n    transport: streamable_http\n    url: ${GW_TEST_URL}\n    headers: {X: '${GW_TEST_KEY:-k}'}\n"
    )
    done = run_cli("config", "check", str(good), env={"GW_TEST_URL": "http://127.0.0.1:1/mcp", "PATH": ""})
    assert done.returncode == 0, done.stderr


def test_config_schema_is_json_schema_for_editors():
    done = run_cli("config", "schema")
    schema = json.loads(done.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"server", "naming", "upstreams"} <= set(schema["properties"])


def test_catalog_prints_a_table_of_every_tool(tmp_path: Path):
    config = tmp_path / "g.yaml"
    config.write_text(
        yaml.safe_dump(
            {"upstreams": {"box": scripted_stdio_args("--name", "box", "--tools", "2", "--no-special-tools")}}
        )
    )
    done = run_cli("catalog", "--config", str(config))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "UPSTREAM", "DESCRIPTION"]
    assert any(line.startswith("box__tool_0") and " box " in line for line in lines)
    assert "2 tools from 1 upstream(s)" in done.stdout


@pytest.mark.anyio
@pytest.mark.parametrize("client_era", CLIENT_ERAS)
async def test_stdio_front_lists_and_calls_like_http(tmp_path: Path, client_era: str):
    config = tmp_path / "g.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "upstreams": {
                    "box": scripted_stdio_args("--name", "box", "--tools", "1", "--no-special-tools"),
                    "time": {"transport": "stdio", "command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
                }
            }
        )
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_gateway", "stdio", "--config", str(config)], cwd=str(ROOT)
    )
    async with Client(params, cache=None, mode=MODES[client_era]) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        assert names == ["box__tool_0", "time__convert_time", "time__get_current_time"]
        assert echo_of(await client.call_tool("box__tool_0", {"a": 1}))["arguments"] == {"a": 1}
        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not result.is_error and "UTC" in result.content[0].text


@pytest.mark.anyio
async def test_stdio_front_serves_2026_clients_with_input_required_and_listen(tmp_path: Path, upstreams):
    _, url = upstreams("--name", "up", "--tools", "0")
    config = tmp_path / "g.yaml"
    config.write_text(
        yaml.safe_dump({"upstreams": {"up": {"transport": "streamable_http", "url": url, "protocol": "2025-11-25"}}})
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_gateway", "stdio", "--config", str(config)], cwd=str(ROOT)
    )

    async def elicitation(context, request) -> ElicitResult:
        return ElicitResult(action="accept", content={"name": "over stdio"})

    async with Client(params, cache=None, mode="2026-07-28", elicitation_callback=elicitation) as client:
        # The handshake-era upstream pushes elicitation/create; the 2026 client answers an input_required.
        elicited = json.loads((await client.call_tool("up__elicit", {"message": "who?"})).content[0].text)
        assert elicited == {"action": "accept", "content": {"name": "over stdio"}}
        async with client.listen(tools_list_changed=True) as subscription:
            assert subscription.honored.tools_list_changed
            await client.call_tool("up__add_tool", {})
            with anyio.fail_after(10):
                async for _event in subscription:
                    break
        assert "up__dyn_0" in {t.name for t in (await client.list_tools()).tools}
