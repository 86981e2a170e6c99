#!/usr/bin/env bash
# Throwaway PgBouncer (Debian's package) in front of a PostgreSQL server, as production runs it:
# transaction pooling, a fixed pool per database and user, clients queued when the pool is dry.
#
#   scripts/pgbouncer.sh start POSTGRES_URL   start it on a free port; print `url=` (what a gateway
#                                            connects to, same database) and `admin=` (the console);
#                                            when it runs already, print those of the running one
#   scripts/pgbouncer.sh stop                stop it and remove its files
#
# Settings (environment): PGBOUNCER_POOL_SIZE (default_pool_size, default 20),
# PGBOUNCER_MAX_CLIENTS (max_client_conn, default 2000). The field ran PgBouncer in transaction mode
# with a pool of this order in front of one PostgreSQL. PgBouncer will not run as root: it runs as
# `postgres`. Its location is remembered in $STATE (default .pg/pgbouncer-state) for `stop`.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
STATE=${STAMPEDE_PGBOUNCER_STATE:-$here/.pg/pgbouncer-state}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  [ -f "$PGB_DIR/pgbouncer.pid" ] && kill -0 "$(cat "$PGB_DIR/pgbouncer.pid")" 2>/dev/null
}

start() {
  local pg=${1:?usage: scripts/pgbouncer.sh start POSTGRES_URL}
  if running; then printf 'url=%s\nadmin=%s\n' "$PGB_URL" "$PGB_ADMIN"; return; fi
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || {
    echo "pgbouncer.sh: PgBouncer is not installed: apt-get install pgbouncer" >&2
    exit 1
  }
  local bin
  bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  # postgres://[user[:password]@]host:port/db (a percent-encoded password is decoded for the userlist)
  local rest=${pg#*://} userinfo=
  if [[ $rest == *@* ]]; then userinfo=${rest%%@*}; rest=${rest#*@}; fi
  local user=${userinfo%%:*} password=
  if [ "$userinfo" != "$user" ]; then
    password=${userinfo#*:}
    password=$(printf '%b' "${password//%/\\x}")
  fi
  user=${user:-postgres}
  local hostport=${rest%%/*}
  local db=${rest##*/}
  db=${db%%\?*}
  local host=${hostport%%:*} port=${hostport##*:}
  local dir listen
  dir=$(mktemp -d /tmp/stampede-pgbouncer.XXXXXX)
  chmod 700 "$dir"
  listen=$(free_port)
  # The server's own password: clients give it to PgBouncer (SCRAM), and PgBouncer to the server. A
  # server of the user's without one (trust) is fronted the same way.
  (umask 077 && printf '"%s" "%s"\n' "$user" "${password//\"/\"\"}" >"$dir/userlist.txt")
  local auth_type=scram-sha-256
  [ -n "$password" ] || auth_type=trust
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen
unix_socket_dir = $dir
auth_type = $auth_type
auth_file = $dir/userlist.txt
admin_users = $user
stats_users = $user
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENTS:-2000}
; sqlx (the gateway, stampede's observer) and JDBC clients send it at startup.
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; fi
  as_pg "$bin" -d "$dir/pgbouncer.ini" >/dev/null 2>&1 || { cat "$dir/pgbouncer.log" >&2 2>/dev/null; exit 1; }
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $listen), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  mkdir -p -m 700 "$(dirname "$STATE")"
  local auth=${userinfo:-$user}
  local url="postgres://$auth@127.0.0.1:$listen/$db" admin="postgres://$auth@127.0.0.1:$listen/pgbouncer"
  (umask 077 && printf 'PGB_DIR=%q\nPGB_URL=%q\nPGB_ADMIN=%q\n' "$dir" "$url" "$admin" >"$STATE")
  printf 'url=%s\nadmin=%s\n' "$url" "$admin"
}

stop() {
  if [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -f "$PGB_DIR/pgbouncer.pid" ]; then
      kill "$(cat "$PGB_DIR/pgbouncer.pid")" 2>/dev/null || true
      for _ in $(seq 30); do
        kill -0 "$(cat "$PGB_DIR/pgbouncer.pid" 2>/dev/null || echo 0)" 2>/dev/null || break
        sleep 0.1
      done
    fi
    rm -rf "$PGB_DIR" "$STATE"
  fi
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: scripts/pgbouncer.sh start POSTGRES_URL | stop" >&2; exit 2 ;;
esac
