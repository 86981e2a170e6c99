#!/usr/bin/env bash
# The official TypeScript reference server `@modelcontextprotocol/server-everything` (npm), cached,
# for the tests that drive the mcp action against it.
#
#   scripts/mcp-everything.sh entry    install it if missing, print its entry script (run with node)
#
# It lives in ${STAMPEDE_EVERYTHING_DIR:-~/.cache/stampede/mcp-everything}; concurrent callers wait for
# one install (flock). Needs node and npm.
set -euo pipefail

VERSION=2026.8.31
DIR=${STAMPEDE_EVERYTHING_DIR:-$HOME/.cache/stampede/mcp-everything}
ENTRY=$DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js

install() {
  command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "mcp-everything.sh: node and npm are missing (apt-get install nodejs npm)" >&2; return 1; }
  mkdir -p "$DIR"
  exec 9>"$DIR.lock"
  flock 9
  if [ -f "$ENTRY" ] && grep -q "\"version\": \"$VERSION\"" "$DIR/node_modules/@modelcontextprotocol/server-everything/package.json"; then
    return
  fi
  (cd "$DIR" && npm install --silent --no-audit --no-fund "@modelcontextprotocol/server-everything@$VERSION" >&2)
}

case "${1:-}" in
  entry) install && echo "$ENTRY" ;;
  *) echo "usage: $0 entry" >&2; exit 2 ;;
esac
