#!/usr/bin/env bash
# Install the gateway in .venv, start the npm everything-server on 127.0.0.1:3001, and serve
# examples/gateway.yaml on http://127.0.0.1:8080/mcp. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e . mcp-server-time
export PATH="$PWD/.venv/bin:$PATH"
CACHE=${MCP_GW_CACHE:-$HOME/.cache/mcp-gateway}
EVERYTHING="$CACHE/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
if [ ! -f "$EVERYTHING" ]; then
  echo "installing @modelcontextprotocol/server-everything (npm) ..."
  npm install --silent --no-audit --no-fund --prefix "$CACHE/npm" @modelcontextprotocol/server-everything >/dev/null
fi
echo "starting the everything-server on 127.0.0.1:3001 ..."
PORT=3001 node --require "$PWD/tests/support/loopback_only.cjs" "$EVERYTHING" streamableHttp >/dev/null 2>&1 &
EVERYTHING_PID=$!
trap 'kill $EVERYTHING_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (echo > /dev/tcp/127.0.0.1/3001) 2>/dev/null && break
  sleep 0.2
done
echo "gateway: http://127.0.0.1:8080/mcp  (readiness: http://127.0.0.1:8080/readyz)"
mcp-gateway serve --config examples/gateway.yaml "$@"
