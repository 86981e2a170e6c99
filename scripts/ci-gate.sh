#!/usr/bin/env bash
# Our own CI gate, and the proof that it can see what it claims to. On a throwaway PostgreSQL:
#  1. ci-smoke against the fixed gateway, RUNS single runs. Each is gated alone against the committed
#     baseline — a failure there is a false alarm, counted and reported (more than one fails the job) —
#     and their median must pass: no regression, and no stale baseline (faster beyond the band means
#     the baseline must be re-recorded, or a slowdown back to it would pass unseen).
#  2. The legacy profile must fail, on post-load CPU and SSE sessions left open.
#  3. Known slowdowns injected into the gateway (TEST_ONLY_CPU_COST_US, TEST_ONLY_DELAY_US), sized from
#     the baseline's own medians to make each request 1.5× and 2× as costly in CPU, or as slow at the
#     median: each must fail the gate, on target_cpu_per_request or p50.
# A summary table goes to stdout and to $STAMPEDE_GATE_OUT/sensitivity.md when that is set.
#
#   scripts/ci-gate.sh [BIN_DIR]      (default target/debug; the baseline was recorded with that build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=${1:-target/debug}
baseline=results/baselines/ci-smoke.json
runs=${RUNS:-5}
out=${STAMPEDE_GATE_OUT:-$(mktemp -d /tmp/stampede-ci-gate.XXXXXX)}
mkdir -p "$out"

export STAMPEDE_PG_STATE="$here/.pg/gate-state"
trap 'scripts/pg.sh stop' EXIT
pg=$(scripts/pg.sh start)
echo "ci-gate: PostgreSQL at $pg; outputs in $out"

# The baseline was recorded on one 2-core machine and CI runs on another of the same kind: the speed
# tolerances cover that machine-to-machine spread and stay below the 1.5× slowdowns of step 3.
tolerances=(--tolerance rps=25% --tolerance p50=35% --tolerance p99=60%
  --tolerance generator_cpu_per_request=30% --tolerance target_cpu_per_request=30%)
scenario=scenarios/ci-smoke.toml
set_pg=(--set "target.database_url=$pg")

# The change and verdict of one check in a gate table: "+52.3% FAIL".
check_of() { awk -v c="$2" '$1 == "relative" && $2 == c { print $(NF-2), $NF }' "$1"; }

summary="$out/sensitivity.md"
{
  echo "| case | injected per request | gated on | change | verdict |"
  echo "|---|---|---|---:|---|"
} >"$summary"

echo "ci-gate: 1. fixed profile, $runs runs, each gated alone and then their median"
alarms=0
for i in $(seq 1 "$runs"); do
  "$bin/stampede" run "$scenario" "${set_pg[@]}" --quiet -o "$out/fixed-$i.json" >/dev/null
  if "$bin/stampede" gate "$out/fixed-$i.json" --baseline "$baseline" "${tolerances[@]}" >"$out/fixed-$i.txt"; then
    verdict=pass
  else
    verdict=FAIL
    alarms=$((alarms + 1))
    cat "$out/fixed-$i.txt"
  fi
  p50=$(check_of "$out/fixed-$i.txt" p50 | cut -d' ' -f1)
  cpu=$(check_of "$out/fixed-$i.txt" target_cpu_per_request | cut -d' ' -f1)
  echo "ci-gate: unchanged run $i: $verdict (p50 $p50, target CPU per request $cpu)"
  echo "| unchanged run $i | nothing | every check (p50, target CPU per request) | $p50, $cpu | $verdict |" >>"$summary"
done
echo "ci-gate: false alarms: $alarms of $runs unchanged runs"
"$bin/stampede" gate "$out"/fixed-*.json --baseline "$baseline" "${tolerances[@]}" \
  --markdown "$out/fixed.md" --junit "$out/fixed.xml"
echo "ci-gate: the median of the unchanged runs passes, and the baseline is not stale"
if [ "$alarms" -gt 1 ]; then
  echo "ci-gate: $alarms false alarms in $runs unchanged runs: the gate is noisier than its tolerances" >&2
  exit 1
fi

echo "ci-gate: 2. legacy profile (the gate must fail)"
set +e
"$bin/stampede" gate --run "$scenario" "${set_pg[@]}" --set target.profile=legacy \
  --baseline "$baseline" "${tolerances[@]}" --junit "$out/legacy.xml" | tee "$out/legacy.txt"
code=${PIPESTATUS[0]}
set -e
if [ "$code" != 1 ]; then
  echo "ci-gate: the gate did not fail on the legacy profile (exit $code)" >&2
  exit 1
fi
for check in post_load_cpu.mean sse_sessions_left; do
  if ! grep -E "^absolute +$check .*FAIL$" "$out/legacy.txt" >/dev/null; then
    echo "ci-gate: the legacy failure was not caught by $check" >&2
    exit 1
  fi
done
echo "ci-gate: the legacy profile fails the gate on post-load CPU and SSE sessions left open, as it must"

echo "ci-gate: 3. known slowdowns (the gate must fail on each)"
read -r cpu_s p50_ms < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]["all"]
print(m["target_cpu_per_request"]["median"], m["p50"]["median"])' "$baseline")
missed=0
for factor in 1.5 2; do
  cpu_us=$(python3 -c "print(round(($factor - 1) * $cpu_s * 1e6))")
  delay_us=$(python3 -c "print(round(($factor - 1) * $p50_ms * 1e3))")
  for case in "cpu TEST_ONLY_CPU_COST_US $cpu_us target_cpu_per_request" "delay TEST_ONLY_DELAY_US $delay_us p50"; do
    read -r kind var amount metric <<<"$case"
    set +e
    "$bin/stampede" gate --run "$scenario" "${set_pg[@]}" --set "target.env.$var=\"$amount\"" \
      --baseline "$baseline" "${tolerances[@]}" >"$out/slow-$kind-$factor.txt"
    code=$?
    set -e
    read -r change verdict < <(check_of "$out/slow-$kind-$factor.txt" "$metric")
    echo "ci-gate: ${factor}× $kind ($var=$amount µs): $metric $change, $verdict (exit $code)"
    echo "| ${factor}× $kind | $amount µs ($var) | $metric | $change | $verdict |" >>"$summary"
    if [ "$code" != 1 ] || [ "$verdict" != FAIL ]; then
      cat "$out/slow-$kind-$factor.txt"
      missed=$((missed + 1))
    fi
  done
done
echo
cat "$summary"
if [ "$missed" -gt 0 ]; then
  echo "ci-gate: the gate missed $missed known slowdown(s)" >&2
  exit 1
fi
echo "ci-gate: every known slowdown failed the gate; $alarms false alarm(s) in $runs unchanged runs"
