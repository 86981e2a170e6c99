#!/usr/bin/env bash
# The official MCP Python SDK (`mcp` from PyPI), in a cached Python 3.12 venv, for the tests that
# use it as a client or a server of stampede's.
#
#   scripts/mcp-sdk.sh python    install it if missing, print the venv's python
#
# The venv is ${STAMPEDE_SDK_VENV:-~/.cache/stampede/mcp-sdk-venv}; Python 3.12 is python3.12 on the
# PATH or pyenv's. Concurrent callers wait for one install (flock).
set -euo pipefail

VERSION=2.3.0
VENV=${STAMPEDE_SDK_VENV:-$HOME/.cache/stampede/mcp-sdk-venv}

python312() {
  # (pyenv's shim is on the PATH even where no 3.12 is selected: it must run, not just be there)
  python3.12 -c '' 2>/dev/null && command -v python3.12 && return
  local found
  found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)
  [ -n "$found" ] && echo "$found" && return
  echo "mcp-sdk.sh: Python 3.12 is missing (the SDK needs it; pyenv install 3.12)" >&2
  return 1
}

install() {
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import mcp, sys; from importlib.metadata import version; sys.exit(version('mcp') != '$VERSION')" 2>/dev/null; then
    return
  fi
  rm -rf "$VENV"
  "$(python312)" -m venv "$VENV"
  "$VENV/bin/pip" install -q "mcp==$VERSION" >&2
}

case "${1:-}" in
  python) install && echo "$VENV/bin/python" ;;
  *) echo "usage: $0 python" >&2; exit 2 ;;
esac
