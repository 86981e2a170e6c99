#!/usr/bin/env bash
# Reproduce the field failure and its fix on this machine, legacy profile then fixed, each with its
# post-load window; then a comparison, a gate of legacy against a baseline of fixed, and an HTML report.
# With --ablate, also the fixed profile with one fix turned off at a time. Then the listen storm (MCP
# 2026-07-28: subscriptions/listen streams dropped by their clients) against each profile, compared.
#
# The field's topology (default; scenarios/field.toml): three gateway replicas behind Debian's nginx, on
# a throwaway PostgreSQL through Debian's PgBouncer (transaction pooling), federating stampede's upstream
# MCP server with the field's upstream latency. --topology single: mixed-4000 against one gateway on
# PostgreSQL directly (the first reproduction: one figure of four).
#
#   scripts/reproduce.sh [--topology field|single] [--ablate] [--small] [--repeat N] [--bin DIR] [--out DIR]
#
#   --ablate   also run fixed without the bulk cascade (STATE_CASCADE=row-locks), without NOWAIT
#              (LOCK_WAIT=wait), without SSE disconnect detection (SSE_DISCONNECT_DETECTION=off) and
#              with request-long database sessions (DB_SESSION_SCOPE=request)
#   --topology field (default) or single
#   --small    a seconds-long version (150 users, 8 s) for CI: the pipeline, not the figures
#   --repeat N each profile N times (legacy-1…N, fixed-1…N, the listen storm too): compare.md then
#              shows each figure's median and its range over the N runs (how stable the reproduction is)
#   --bin DIR  where stampede and stampede-gateway are (default target/release)
#   --out DIR  default results/reproduce/<UTC timestamp>
#
# Every run gets a database of its own, so no run inherits rows or locks from the one before.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

ablate=0 small=0 repeat=1 bin=target/release out="" topology=field
while [ $# -gt 0 ]; do
  case "$1" in
    --ablate) ablate=1 ;;
    --small) small=1 ;;
    --repeat) repeat=$2; shift ;;
    --topology) topology=$2; shift ;;
    --bin) bin=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "reproduce: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "reproduce: --repeat is a count of runs, not $repeat" >&2; exit 2; }
out=${out:-results/reproduce/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
for b in stampede stampede-gateway; do
  [ -x "$bin/$b" ] || { echo "reproduce: $bin/$b not built (make release, or --bin target/debug)" >&2; exit 2; }
done

case "$topology" in
  field)
    scenario=scenarios/field.toml
    # Both parts come from Debian's packages; say which one is missing before anything starts.
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] ||
      { echo "reproduce: PgBouncer is not installed: apt-get install pgbouncer (or --topology single)" >&2; exit 2; }
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] ||
      { echo "reproduce: nginx is not installed: apt-get install nginx-light (or --topology single)" >&2; exit 2; }
    ;;
  single) scenario=scenarios/mixed-4000.toml ;;
  *) echo "reproduce: --topology is field or single, not $topology" >&2; exit 2 ;;
esac
size=() fixed_small=()
if [ "$small" = 1 ]; then
  # The actions' order is the same in both scenarios: 7 and 8 are the SSE sessions, 9 and 10 the MCP ones.
  # The settle is as long as the full run's (5 s): on a busy machine the fixed replicas took more than 2 s
  # to drain the load's last requests, and a 2 s settle then showed fixed at 51 % after the load.
  size=(--users 150 --duration 8s --set load.ramp_up=3s --set load.ramp_down=1s --set load.graceful_stop=3s
    --set observe.post_load=10s --set observe.settle=5s --set setup.tools=100
    --set 'load.think_time="200ms..600ms"' --set 'actions[7].hold="1s..3s"' --set 'actions[8].hold="1s..3s"'
    --set 'actions[9].hold="1s..3s"' --set 'actions[10].hold="1s..3s"')
  # A user still inside an MCP session when graceful_stop runs out is cut between two POSTs, with no
  # stream open and no DELETE sent (k6 and Locust cut the same way): the server cannot know it is gone
  # and keeps the session until its idle timeout, 120 s, longer than this post-load window. At this size
  # a busy machine cuts a few; the fixed run's timeout is shortened so those end within the window too,
  # and what it must end by itself (a stream whose client went away) still has to.
  fixed_small=(--set 'target.env.MCP_SESSION_IDLE_TIMEOUT="2"')
fi

say() { printf '\n== reproduce: %s\n' "$*"; }

# Its own cluster state, never the one a test run or `make pg` started.
export STAMPEDE_PG_STATE=${STAMPEDE_REPRODUCE_PG_STATE:-$here/.pg/reproduce-state}
export STAMPEDE_PGBOUNCER_STATE=${STAMPEDE_REPRODUCE_PGBOUNCER_STATE:-$here/.pg/reproduce-pgbouncer}
# Ctrl-C reaches stampede too, which stops its replicas and nginx and writes its results (incomplete);
# then this stops PgBouncer and PostgreSQL.
trap 'scripts/pgbouncer.sh stop >/dev/null 2>&1 || true; scripts/pg.sh stop' EXIT
say "starting a throwaway PostgreSQL"
pg=$(scripts/pg.sh start)
echo "$pg"

# variant name, what it is, then its overrides.
runs=()
run() {
  local name=$1 what=$2
  shift 2
  local db="stampede_${name//-/_}"
  PGOPTIONS="-c client_min_messages=warning" psql -q "$pg" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  local direct="${pg%/*}/$db" where=()
  if [ "$topology" = field ]; then
    # PgBouncer in front of this run's database: the gateways go through it; the session bus (LISTEN
    # does not pass a transaction pooler) and the blocked-query observer go to PostgreSQL directly.
    scripts/pgbouncer.sh stop >/dev/null 2>&1 || true
    local pgb url admin
    pgb=$(scripts/pgbouncer.sh start "$direct")
    url=$(sed -n 's/^url=//p' <<<"$pgb")
    admin=$(sed -n 's/^admin=//p' <<<"$pgb")
    where=(--set "target.database_url=$url" --set "target.env.SESSION_BUS_URL=$direct"
      --set "observe.postgres=$direct" --set "observe.pgbouncer=$admin")
  else
    where=(--set "target.database_url=$direct")
  fi
  say "$name: $what"
  "$bin/stampede" run "$scenario" "${size[@]}" "${where[@]}" "$@" -o "$out/$name.json"
  # The report overlays one run of each variant: a repeat's first.
  [[ "$name" =~ -[0-9]+$ && ! "$name" =~ -1$ ]] || runs+=("$out/$name.json")
}

# Run N of a profile is named <profile>-N when repeated; a single run keeps the profile's name.
named() { if [ "$repeat" = 1 ]; then echo "$1"; else echo "$1-$2"; fi; }
# The files of every run of a profile, comma-joined: one column of `stampede compare`.
column() { local i files=(); for i in $(seq "$repeat"); do files+=("$out/$(named "$1" "$i").json"); done; (IFS=,; echo "${files[*]}"); }

started=$(date +%s)
for i in $(seq "$repeat"); do
  run "$(named legacy "$i")" "legacy profile: row-by-row FOR UPDATE cascade, waiting locks, request-long database sessions, SSE spin after disconnects" \
    --set target.profile=legacy
  run "$(named fixed "$i")" "fixed profile: bulk cascade, FOR UPDATE NOWAIT → 409, no connection held across an upstream call, SSE ends when the client is gone" \
    --set target.profile=fixed "${fixed_small[@]}"
done
if [ "$ablate" = 1 ]; then
  run without-bulk-cascade "fixed, but the gateway toggle locks and updates row by row (STATE_CASCADE=row-locks)" \
    --set target.profile=fixed --set target.env.STATE_CASCADE=row-locks
  run without-nowait "fixed, but toggles wait on a locked row (LOCK_WAIT=wait)" \
    --set target.profile=fixed --set target.env.LOCK_WAIT=wait
  run without-sse-detection "fixed, but SSE disconnect detection off (SSE_DISCONNECT_DETECTION=off)" \
    --set target.profile=fixed --set target.env.SSE_DISCONNECT_DETECTION=off
  run without-short-sessions "fixed, but a tool call holds its database session across the upstream call (DB_SESSION_SCOPE=request)" \
    --set target.profile=fixed --set target.env.DB_SESSION_SCOPE=request
fi

say "legacy vs fixed$([ "$repeat" -gt 1 ] && echo ": each figure's median (range) over $repeat runs")"
"$bin/stampede" compare "$(column legacy)" "$(column fixed)" --markdown "$out/compare.md"
say "legacy gated against a baseline of the fixed run (it should fail: that is the regression the gate exists for)"
IFS=, read -r -a fixed_runs <<<"$(column fixed)"
IFS=, read -r -a legacy_runs <<<"$(column legacy)"
"$bin/stampede" baseline --from "${fixed_runs[@]}" -o "$out/baseline-fixed.json" >/dev/null
set +e
"$bin/stampede" gate "${legacy_runs[@]}" --baseline "$out/baseline-fixed.json" --markdown "$out/gate.md"
gate=$?
set -e
case $gate in
  1) echo "reproduce: the gate failed legacy against fixed, as it should" ;;
  0) echo "reproduce: the gate passed legacy against fixed: the failure did not reproduce" ;;
  *) echo "reproduce: the gate could not judge (exit $gate)" >&2; exit "$gate" ;;
esac
if [ "$ablate" = 1 ]; then
  say "what each fix is worth: fixed, then fixed with one fix turned off"
  "$bin/stampede" compare "$out/$(named fixed 1).json" "$out/without-bulk-cascade.json" "$out/without-nowait.json" \
    "$out/without-sse-detection.json" "$out/without-short-sessions.json" --markdown "$out/ablation.md"
fi
# The same failure in the 2026-07-28 protocol: subscriptions/listen streams dropped by their clients
# (scenarios/listen-storm.toml, one gateway on the embedded database: the streams, not the locks).
listen_size=()
if [ "$small" = 1 ]; then
  listen_size=(--users 200 --duration 5s --set load.ramp_up=1s --set observe.post_load=8s --set observe.settle=3s
    --set 'actions[0].hold="1s..2s"' --set 'actions[1].hold="1s..2s"')
fi
for i in $(seq "$repeat"); do
  for profile in legacy fixed; do
    say "$(named "listen-$profile" "$i"): listen storm (MCP 2026-07-28), $profile profile"
    "$bin/stampede" run scenarios/listen-storm.toml "${listen_size[@]}" --set target.profile=$profile \
      -o "$out/$(named "listen-$profile" "$i").json"
  done
done
say "listen storm: legacy vs fixed"
"$bin/stampede" compare "$(column listen-legacy)" "$(column listen-fixed)" --markdown "$out/listen-compare.md"
"$bin/stampede" report "${runs[0]}" --compare "${runs[@]:1}" -o "$out/report.html"
runs_of=""
if [ "$repeat" -gt 1 ]; then runs_of="-{1..$repeat}"; fi
say "done in $(($(date +%s) - started)) s: $out/{legacy,fixed}$runs_of.json, compare.md, gate.md$([ "$ablate" = 1 ] && echo ", ablation.md"), listen-{legacy,fixed}$runs_of.json, listen-compare.md, report.html"
