#!/usr/bin/env bash
# schemathesis (from PyPI, in a cached python3.11 venv): generates requests from the gateway's
# /openapi.json and checks every answer against it.
#
#   scripts/schemathesis.sh install        create the venv if missing
#   scripts/schemathesis.sh run URL TOKEN  test the gateway at URL (e.g. http://127.0.0.1:4444) with
#                                          the settings in gateway/tests/schemathesis/schemathesis.toml;
#                                          more `st run` flags may follow (e.g. --max-examples 200)
#
# The venv is ${STAMPEDE_ST_VENV:-~/.cache/stampede/st-venv}. gateway/tests/it/schemathesis.rs runs it
# on both backends in `make test`; `make fuzz` runs it with many more examples and a random seed.
set -euo pipefail

VENV=${STAMPEDE_ST_VENV:-$HOME/.cache/stampede/st-venv}
VERSION=4.32.5
ROOT=$(cd "$(dirname "$0")/.." && pwd)

install() {
  if [ -x "$VENV/bin/st" ] && "$VENV/bin/st" --version 2>/dev/null | grep -q "$VERSION"; then
    return
  fi
  python3.11 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$VERSION" >&2
}

case "${1:-}" in
  install) install ;;
  run)
    [ $# -ge 3 ] || { echo "usage: $0 run URL TOKEN [st run flags…]" >&2; exit 2; }
    url=$2 token=$3
    shift 3
    install
    # No example database in the working tree; no colour in logs.
    exec "$VENV/bin/st" --no-color --config-file "$ROOT/gateway/tests/schemathesis/schemathesis.toml" \
      run "$url/openapi.json" -H "Authorization: Bearer $token" --generation-database none "$@"
    ;;
  *) echo "usage: $0 install | run URL TOKEN [st run flags…]" >&2; exit 2 ;;
esac
