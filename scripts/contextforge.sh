#!/usr/bin/env bash
# Throwaway IBM MCP ContextForge gateway, for running stampede against the real thing.
#
#   scripts/contextforge.sh start   install it if missing, start it on a free port (SQLite in a temp
#                                   dir), wait for /health, print `url=…` and `token=…` (an admin JWT)
#   scripts/contextforge.sh stop    stop it and remove its temp dir (database, log)
#
# e.g.  eval "$(scripts/contextforge.sh start)"
#       target/debug/stampede run scenarios/contextforge.toml --target "$url" --set target.token="$token"
#
# STAMPEDE_CF_VERSION picks the release: 1.0.7 (the default, the session era, python3.11) or 1.1.0 (it
# serves MCP 2026-07-28 too; Python 3.12, on the PATH or pyenv's). The venv is
# ${STAMPEDE_CF_VENV:-~/.cache/stampede/cf-venv[-1.1.0]}; the running instance is remembered in $STATE
# (default ~/.cache/stampede/contextforge.state, in a directory only its owner can write: a state file
# in a shared /tmp could be planted by another user). The state is read as data, never sourced, and
# `stop` removes only a directory this script made. Its log is $CF_DIR/gateway.log.
set -euo pipefail

case "${STAMPEDE_CF_VERSION:-1.0.7}" in
  1.0.7) VERSION=1.0.7.post20260921 PYTHON=3.11 VENV=${STAMPEDE_CF_VENV:-$HOME/.cache/stampede/cf-venv} ;;
  1.1.0) VERSION=1.1.0 PYTHON=3.12 VENV=${STAMPEDE_CF_VENV:-$HOME/.cache/stampede/cf-venv-1.1.0} ;;
  *) echo "contextforge.sh: STAMPEDE_CF_VERSION is 1.0.7 or 1.1.0, not $STAMPEDE_CF_VERSION" >&2; exit 2 ;;
esac
STATE=${STAMPEDE_CF_STATE:-$HOME/.cache/stampede/contextforge.state}

# The python to make the venv with: pythonX.Y on the PATH (pyenv's shim must run, not just be there),
# else pyenv's own.
python() {
  "python$PYTHON" -c '' 2>/dev/null && command -v "python$PYTHON" && return
  local found
  found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PYTHON"*/bin/"python$PYTHON" 2>/dev/null | tail -1)
  [ -n "$found" ] && echo "$found" && return
  echo "contextforge.sh: ContextForge $VERSION needs Python $PYTHON, which is missing" >&2
  return 1
}

install() {
  [ -x "$VENV/bin/mcpgateway" ] && return
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9
  [ -x "$VENV/bin/mcpgateway" ] && return
  rm -rf "$VENV"
  "$(python)" -m venv "$VENV"
  "$VENV/bin/pip" install -q "mcp-contextforge-gateway==$VERSION" >&2
}

hex() {
  python3 -c "import secrets; print(secrets.token_hex($1))"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  [ -f "$STATE" ] && stop
  install
  local dir port
  dir=$(mktemp -d /tmp/stampede-cf.XXXXXX)
  port=$(free_port)
  export DATABASE_URL="sqlite:///$dir/mcp.db" AUTH_REQUIRED=true \
    JWT_SECRET_KEY="$(hex 32)" JWT_ALGORITHM=HS256 \
    JWT_AUDIENCE=mcpgateway-api JWT_ISSUER=mcpgateway AUTH_ENCRYPTION_SECRET="$(hex 32)" \
    PLATFORM_ADMIN_EMAIL=admin@example.com PLATFORM_ADMIN_PASSWORD="Stampede-$(hex 8)" \
    DEFAULT_USER_PASSWORD="Stampede-$(hex 8)" \
    MCPGATEWAY_UI_ENABLED=false MCPGATEWAY_ADMIN_API_ENABLED=false CACHE_TYPE=database \
    ENABLE_METRICS=true MCPGATEWAY_CATALOG_ENABLED=false LLMCHAT_ENABLED=false PLUGINS_ENABLED=false \
    OTEL_ENABLE_OBSERVABILITY=false SSRF_ALLOW_LOCALHOST=true RATE_LIMITING_ENABLED=false \
    HOST=127.0.0.1 PORT="$port"
  # PORT matters beyond --port: SSE sessions relay their messages to http://127.0.0.1:$PORT/rpc
  # (default 4444); without it every request sent through /sse is answered -32000 "All connection
  # attempts failed". Run from the temp dir, so no stray .env or files land in the project.
  (cd "$dir" && exec setsid "$VENV/bin/mcpgateway" --host 127.0.0.1 --port "$port" \
    >"$dir/gateway.log" 2>&1 </dev/null) &
  local pid=$!
  mkdir -p -m 700 "$(dirname "$STATE")"
  printf 'CF_PID=%s\nCF_DIR=%s\n' "$pid" "$dir" >"$STATE"
  local waited=0
  until curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [ $((waited += 1)) -gt 90 ]; then
      echo "contextforge.sh: ContextForge exited or gave no /health in 90 s; the end of its log:" >&2
      tail -n 30 "$dir/gateway.log" >&2
      stop
      exit 1
    fi
    sleep 1
  done
  local token
  token=$(cd "$dir" && "$VENV/bin/python" -m mcpgateway.utils.create_jwt_token \
    --username admin@example.com --secret "$JWT_SECRET_KEY" --exp 1440 2>/dev/null | tail -n 1)
  echo "url=http://127.0.0.1:$port"
  echo "token=$token"
  echo "pid=$pid"
}

# The state's two values, checked: a pid, and a directory of ours that mktemp made.
read_state() {
  [ -f "$STATE" ] && [ -O "$STATE" ] || return 1
  CF_PID=$(sed -n 's/^CF_PID=//p' "$STATE")
  CF_DIR=$(sed -n 's/^CF_DIR=//p' "$STATE")
  [[ $CF_PID =~ ^[0-9]+$ ]] && [[ $CF_DIR =~ ^/tmp/stampede-cf\.[A-Za-z0-9]+$ ]] && [ -O "$CF_DIR" ]
}

stop() {
  [ -f "$STATE" ] || return 0
  if ! read_state; then
    echo "contextforge.sh: $STATE is not a state this script wrote; left alone" >&2
    return 1
  fi
  # setsid made it a process group leader: stop it and its workers.
  kill -- -"$CF_PID" 2>/dev/null || kill "$CF_PID" 2>/dev/null || true
  for _ in $(seq 20); do kill -0 "$CF_PID" 2>/dev/null || break; sleep 0.5; done
  kill -9 -- -"$CF_PID" 2>/dev/null || true
  rm -rf "$CF_DIR" "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
