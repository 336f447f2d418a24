#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
#   bash tests/run.sh [pytest args...]
# Python packages go to .venv; npm packages (MCP reference servers, Node 22 for the conformance suite)
# to ${MCP_GW_CACHE:-~/.cache/mcp-gateway}; a Redis server is started on 127.0.0.1:6379 if none answers.
# Tests run on ${MCP_GW_TEST_PROCESSES:-2} processes (pytest-xdist, whole files per process, since fixtures
# are module-scoped); MCP_GW_TEST_PROCESSES=0 runs them in this one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }

step "python packages (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

step "node and npm"
if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "npm is required (install Node.js)"; exit 2
  fi
fi
CACHE=${MCP_GW_CACHE:-$HOME/.cache/mcp-gateway}
if [ ! -f "$CACHE/npm/node_modules/@modelcontextprotocol/server-everything/package.json" ]; then
  echo "installing @modelcontextprotocol/server-everything into $CACHE/npm"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" @modelcontextprotocol/server-everything >/dev/null
fi

step "redis on 127.0.0.1:6379"
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

step "tests"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest -n "${MCP_GW_TEST_PROCESSES:-2}" --dist loadfile "$@"
