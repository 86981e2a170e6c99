#!/usr/bin/env bash
# Our own CI gate, and the proof that the gate sees what it claims to. On a throwaway PostgreSQL:
#
#  A. Against the committed baseline (results/baselines/ci-smoke.json) — what the tree is now against
#     what it was when the baseline was recorded, on another day, maybe on another machine of the kind:
#     1. ci-smoke against the fixed gateway, the median of 3 runs, must pass: no regression, and no stale
#        baseline (faster beyond the band: re-record it, or a slowdown back to it would pass unseen).
#        Machines of this kind change speed between sessions by up to 2× at the median and 4× at p99 on
#        the same tree (docs/gates.md), so the speed bands here are wide (CPU per
#        request 2.5×, p50 3.5×, p99 5×, rps 35 %): they catch a tree at least that much slower, or a
#        baseline that much too slow to describe the tree any more.
#     2. The legacy profile must fail, on post-load CPU and MCP sessions left open.
#  B. The gate's sensitivity, against runs made in this job: five unchanged runs interleaved with the
#     slowed ones (so a drift of the machine's speed over these minutes reaches both alike). Known
#     slowdowns injected into the gateway (TEST_ONLY_CPU_COST_US, TEST_ONLY_DELAY_US), sized from the
#     first unchanged run to make each request 1.5× (median of three runs) and 2× (one run) as costly
#     in CPU, or as slow at the median, gated against the baseline of the unchanged runs: each must
#     fail, on target_cpu_per_request or p50. Each unchanged run gated alone against the other four:
#     a failure is a false alarm, counted and reported — not enforced: such a machine can change speed
#     between two 20-second runs.
# The sensitivity table goes to stdout and to $STAMPEDE_GATE_OUT/sensitivity.md.
#
#   scripts/ci-gate.sh [BIN_DIR]      (default target/debug; the baseline was recorded with that build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=${1:-target/debug}
committed=results/baselines/ci-smoke.json
out=${STAMPEDE_GATE_OUT:-$(mktemp -d /tmp/stampede-ci-gate.XXXXXX)}
mkdir -p "$out"

export STAMPEDE_PG_STATE="$here/.pg/gate-state"
trap 'scripts/pg.sh stop' EXIT
pg=$(scripts/pg.sh start)
echo "ci-gate: PostgreSQL at $pg; outputs in $out"
scenario=scenarios/ci-smoke.toml
set_pg=(--set "target.database_url=$pg")

# Against the committed baseline: bands for a machine whose speed is not the recording's.
across_sessions=(--tolerance rps=35% --tolerance p50=250% --tolerance p99=400%
  --tolerance generator_cpu_per_request=150% --tolerance target_cpu_per_request=150%)
# Against runs of this job: bands that stay below a 1.5× slowdown.
same_session=(--tolerance rps=25% --tolerance p50=35% --tolerance p99=60%
  --tolerance generator_cpu_per_request=30% --tolerance target_cpu_per_request=30%)

# The change and verdict of one check in a gate table: "+52.3% FAIL".
check_of() { awk -v c="$2" '$1 == "relative" && $2 == c { print $(NF-2), $NF }' "$1"; }

echo "ci-gate: A1. fixed profile, median of 3 runs, against $committed"
"$bin/stampede" gate --run "$scenario" --repeat 3 "${set_pg[@]}" --baseline "$committed" "${across_sessions[@]}" \
  --fail-on-stale --markdown "$out/fixed.md" --junit "$out/fixed.xml"
echo "ci-gate: the fixed gateway passes, and the committed baseline is not stale"

echo "ci-gate: A2. legacy profile (the gate must fail)"
set +e
"$bin/stampede" gate --run "$scenario" "${set_pg[@]}" --set target.profile=legacy \
  --baseline "$committed" "${across_sessions[@]}" --junit "$out/legacy.xml" | tee "$out/legacy.txt"
code=${PIPESTATUS[0]}
set -e
if [ "$code" != 1 ]; then
  echo "ci-gate: the gate did not fail on the legacy profile (exit $code)" >&2
  exit 1
fi
for check in post_load_cpu.mean mcp_sessions_left; do
  # The scenario's own threshold on a metric is its one bar (a threshold row), else the absolute check.
  if ! grep -E "^(absolute|threshold) +$check( |$).*FAIL$" "$out/legacy.txt" >/dev/null; then
    echo "ci-gate: the legacy failure was not caught by $check" >&2
    exit 1
  fi
done
echo "ci-gate: the legacy profile fails the gate on post-load CPU and MCP sessions left open, as it must"

echo "ci-gate: B. the gate's sensitivity: unchanged runs interleaved with slowed ones"
# Interleaved (U S U S … U) so that a drift of the machine's speed over the minutes this takes reaches
# both alike; the slowdowns are sized from the first unchanged run.
run_one() { # name, then overrides
  local name=$1
  shift
  # 99: a threshold failed; the gate below judges the run, so the run itself need not pass them.
  "$bin/stampede" run "$scenario" "${set_pg[@]}" "$@" --quiet -o "$out/$name.json" >/dev/null || [ $? = 99 ]
}
run_one unchanged-1
read -r cpu_s p50_ms < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
t, o = r["totals"], r["observed"]
print(o["cpu_load_mean_pct"] / 100 * r["load"]["seconds"] / t["count"], t["p50_ms"])' "$out/unchanged-1.json")
# kind factor variable amount metric
cases=()
for factor in 1.5 2; do
  cpu_us=$(python3 -c "print(round(($factor - 1) * $cpu_s * 1e6))")
  delay_us=$(python3 -c "print(round(($factor - 1) * $p50_ms * 1e3))")
  cases+=("cpu $factor TEST_ONLY_CPU_COST_US $cpu_us target_cpu_per_request")
  cases+=("delay $factor TEST_ONLY_DELAY_US $delay_us p50")
done
slow_run() { # kind factor variable amount metric, round
  read -r kind factor var amount _ <<<"$1"
  run_one "slow-$kind-$factor-$2" --set "target.env.$var=\"$amount\""
}
# 1.5× is within two noise widths of a single run here, so it is judged on the median of three runs;
# 2× on one. Order: U 1.5c 1.5d U 1.5c 1.5d U 1.5c 1.5d U 2c 2d U.
runs=1
for round in 1 2 3; do
  slow_run "${cases[0]}" "$round"
  slow_run "${cases[1]}" "$round"
  runs=$((runs + 1))
  run_one "unchanged-$runs"
done
slow_run "${cases[2]}" 1
slow_run "${cases[3]}" 1
runs=$((runs + 1))
run_one "unchanged-$runs"

summary="$out/sensitivity.md"
{
  echo "| case | injected per request | gated on | change | verdict |"
  echo "|---|---|---|---:|---|"
} >"$summary"
# Each unchanged run against a baseline of the other unchanged runs: a failure is a false alarm.
alarms=0
for i in $(seq 1 "$runs"); do
  others=()
  for j in $(seq 1 "$runs"); do [ "$j" = "$i" ] || others+=("$out/unchanged-$j.json"); done
  "$bin/stampede" baseline --from "${others[@]}" -o "$out/baseline-without-$i.json" >/dev/null
  if "$bin/stampede" gate "$out/unchanged-$i.json" --baseline "$out/baseline-without-$i.json" "${same_session[@]}" \
    >"$out/unchanged-$i.txt"; then
    verdict=pass
  else
    verdict=FAIL
    alarms=$((alarms + 1))
    cat "$out/unchanged-$i.txt"
  fi
  p50=$(check_of "$out/unchanged-$i.txt" p50 | cut -d' ' -f1)
  cpu=$(check_of "$out/unchanged-$i.txt" target_cpu_per_request | cut -d' ' -f1)
  echo "ci-gate: unchanged run $i: $verdict (p50 $p50, target CPU per request $cpu)"
  echo "| unchanged run $i | nothing | every check (p50, target CPU per request) | $p50, $cpu | $verdict |" >>"$summary"
done
echo "ci-gate: false alarms: $alarms of $runs unchanged runs"

# Each slowed case against the baseline of all the unchanged runs.
"$bin/stampede" baseline --from "$out"/unchanged-*.json -o "$out/baseline-unchanged.json" >/dev/null
missed=0
for case in "${cases[@]}"; do
  read -r kind factor var amount metric <<<"$case"
  set +e
  "$bin/stampede" gate "$out/slow-$kind-$factor"-*.json --baseline "$out/baseline-unchanged.json" \
    "${same_session[@]}" >"$out/slow-$kind-$factor.txt"
  code=$?
  set -e
  n=$(ls "$out/slow-$kind-$factor"-*.json | wc -l)
  read -r change verdict < <(check_of "$out/slow-$kind-$factor.txt" "$metric")
  echo "ci-gate: ${factor}× $kind ($var=$amount µs, median of $n): $metric $change, $verdict (exit $code)"
  echo "| ${factor}× $kind | $amount µs ($var), median of $n runs | $metric | $change | $verdict |" >>"$summary"
  if [ "$code" != 1 ] || [ "$verdict" != FAIL ]; then
    cat "$out/slow-$kind-$factor.txt"
    missed=$((missed + 1))
  fi
done
echo
cat "$summary"
if [ "$missed" -gt 0 ]; then
  echo "ci-gate: the gate missed $missed known slowdown(s)" >&2
  exit 1
fi
echo "ci-gate: every known slowdown failed the gate; $alarms false alarm(s) in $runs unchanged runs"
