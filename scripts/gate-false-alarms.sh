#!/usr/bin/env bash
# The gate right after a fresh baseline, as a user meets it (docs/gates.md, "False alarms"): record
# `stampede baseline SCENARIO --repeat 3`, then gate N unchanged runs against it one by one (each exit
# code counted: a failure is a false alarm), then runs with known slowdowns injected into the gateway
# (TEST_ONLY_CPU_COST_US, TEST_ONLY_DELAY_US: each request 1.5× and 2× as costly in CPU, or as slow at
# the median, sized from the baseline) gated the same way: each must fail. Default tolerances, the
# embedded SQLite, the scenario as shipped. Prints a Markdown table; writes it to OUT/false-alarms.md.
#
#   scripts/gate-false-alarms.sh [BIN_DIR] [N] [SCENARIO]   (default target/debug, 20, scenarios/ci-smoke.toml)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=${1:-target/debug}
n=${2:-20}
scenario=${3:-scenarios/ci-smoke.toml}
out=${STAMPEDE_GATE_OUT:-$(mktemp -d /tmp/stampede-false-alarms.XXXXXX)}
mkdir -p "$out"
echo "gate-false-alarms: outputs in $out"

# A run's own thresholds are the gate's business here, not the run's: 99 is a finished run.
run_one() { "$bin/stampede" run "$scenario" --quiet -o "$out/$1.json" "${@:2}" >/dev/null || [ $? = 99 ]; }
# "<change> <verdict>" of a relative check in a gate table.
check_of() { awk -v c="$2" '$1 == "relative" && $2 == c { print $(NF-2), $NF }' "$1"; }

"$bin/stampede" baseline "$scenario" --repeat 3 -o "$out/baseline.json" >/dev/null
read -r cpu_s p50_ms < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]["all"]
print(m["target_cpu_per_request"]["median"], m["p50"]["median"])' "$out/baseline.json")

table="$out/false-alarms.md"
{
  echo "| run | injected per request | exit | p50 change | p99 change | target CPU/request change | verdict |"
  echo "|---|---|---:|---:|---:|---:|---|"
} >"$table"
gate_row() { # name, what was injected
  local code
  set +e
  "$bin/stampede" gate "$out/$1.json" --baseline "$out/baseline.json" >"$out/$1.txt"
  code=$?
  set -e
  local head p50 p99 cpu
  head=$(head -1 "$out/$1.txt" | sed 's/^[^:]*: //')
  p50=$(check_of "$out/$1.txt" p50 | cut -d' ' -f1)
  p99=$(check_of "$out/$1.txt" p99 | cut -d' ' -f1)
  cpu=$(check_of "$out/$1.txt" target_cpu_per_request | cut -d' ' -f1)
  echo "| $1 | $2 | $code | $p50 | $p99 | $cpu | $head |" | tee -a "$table"
  return "$code"
}

alarms=0
for i in $(seq 1 "$n"); do
  run_one "unchanged-$i"
  gate_row "unchanged-$i" nothing || alarms=$((alarms + 1))
done
missed=0
for factor in 1.5 2; do
  cpu_us=$(python3 -c "print(round(($factor - 1) * $cpu_s * 1e6))")
  delay_us=$(python3 -c "print(round(($factor - 1) * $p50_ms * 1e3))")
  for case in "cpu TEST_ONLY_CPU_COST_US $cpu_us" "delay TEST_ONLY_DELAY_US $delay_us"; do
    read -r kind var amount <<<"$case"
    run_one "slow-$kind-$factor" --set "target.env.$var=\"$amount\""
    if gate_row "slow-$kind-$factor" "${factor}× $kind ($var=$amount µs)"; then missed=$((missed + 1)); fi
  done
done
echo
echo "gate-false-alarms: $alarms false alarm(s) in $n unchanged runs; $missed of 4 slowdowns missed"
[ "$alarms" = 0 ] && [ "$missed" = 0 ]
