#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for tests and local runs.
#
#   scripts/pg.sh start   start a cluster on a free port, print its URL (idempotent)
#   scripts/pg.sh url     print the URL of the running cluster
#   scripts/pg.sh stop    stop it and remove its files
#   scripts/pg.sh pause   stop the server, keeping its files (an outage, for the fault tests)
#   scripts/pg.sh resume  start the paused server again, on the same port
#   scripts/pg.sh with CMD…  run CMD with a cluster of its own in $PG_URL, removed afterwards whatever
#                            happens; the status is CMD's
#
# root cannot run initdb, so the cluster runs as the `postgres` user in a directory under /tmp that only
# it can enter (its socket there too). Connections need the password generated at start (SCRAM): the
# URL printed carries it. Another local user cannot connect as the superuser (`COPY … TO PROGRAM`
# would run commands as the cluster's owner). Its location is remembered in $STATE (default .pg/state
# in the project) so `stop` can find it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
STATE=${STAMPEDE_PG_STATE:-$here/.pg/state}
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  if running; then echo "$PG_URL"; return; fi
  [ -x "$bindir/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found (initdb)" >&2; exit 1; }
  local dir port
  dir=$(mktemp -d /tmp/stampede-pg.XXXXXX)
  chmod 700 "$dir"
  port=$(free_port)
  local password
  password=$(python3 -c "import secrets; print(secrets.token_hex(16))")
  (umask 077 && printf '%s\n' "$password" >"$dir/pwfile")
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; fi
  as_pg "$bindir/initdb" -D "$dir/data" -A scram-sha-256 --pwfile="$dir/pwfile" -U postgres --no-sync -E UTF8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  # Throwaway cluster: durability off for speed; pg_stat_statements lets tests count statements.
  local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=600 -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off -c shared_preload_libraries=pg_stat_statements"
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$opts" \
    >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  mkdir -p -m 700 "$(dirname "$STATE")"
  local url="postgres://postgres:$password@127.0.0.1:$port/postgres"
  # The state holds the password: its owner's only.
  (umask 077 && printf 'PGDATA_DIR=%q\nPG_DIR=%q\nPG_URL=%q\nPG_OPTS=%q\n' "$dir/data" "$dir" "$url" "$opts" >"$STATE")
  echo "$url"
}

pause() {
  running || { echo "pg.sh: no cluster running" >&2; exit 1; }
  as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
}

resume() {
  [ -f "$STATE" ] || { echo "pg.sh: no cluster to resume" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$STATE"
  as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" -l "$PG_DIR/server.log" -w -t 60 start -o "$PG_OPTS" >/dev/null \
    || { tail -20 "$PG_DIR/server.log" >&2; exit 1; }
}

stop() {
  if [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR" "$STATE"
  fi
}

with() {
  local url
  url=$(start)
  trap stop EXIT
  PG_URL=$url "$@"
}

case "${1:-}" in
  start) start ;;
  with) shift; with "$@" ;;
  url) running && echo "$PG_URL" || { echo "pg.sh: no cluster running" >&2; exit 1; } ;;
  stop) stop ;;
  pause) pause ;;
  resume) resume ;;
  *) echo "usage: $0 start|url|stop|pause|resume|with CMD…" >&2; exit 2 ;;
esac
