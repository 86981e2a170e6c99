#!/usr/bin/env bash
# What can be checked of deploy/kubernetes without a cluster (there is none here):
#   1. the manifests against the Kubernetes API schemas, offline (kubernetes-validate from PyPI, in a
#      venv), strictly (no unknown field), for the oldest and newest versions we claim — and a broken
#      copy must fail, so the check can fail;
#   2. a rehearsal of what the pods run: the ConfigMap's scenario validated, then the Job's
#      stampede-shard for every completion index (the env the manifest sets, a short load) against a
#      reference gateway, and the collector's stampede-collect merging them — one merged, complete run;
#   3. the image definition built and run where a container builder answers (skipped with a line else).
# Usage: scripts/k8s-check.sh [--bin DIR]   (DIR holds stampede and stampede-gateway; default target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
[ "${1:-}" = --bin ] && bin=$2
bin=$(cd "$bin" && pwd)
k8s=deploy/kubernetes
venv=${STAMPEDE_K8S_VENV:-$PWD/.venv-k8s}
say() { printf '== k8s-check: %s\n' "$*"; }

if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  say "installing kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==1.37.0"
fi
manifests=("$k8s"/*.yaml)
for version in 1.29.0 1.37.0; do
  say "validating ${#manifests[@]} manifests against Kubernetes $version (strict)"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
done
work=$(mktemp -d)
gateway_pid=""
trap '[ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null; rm -rf "$work"' EXIT
sed 's/  completions: 4/  completions: four/' "$k8s/job.yaml" >"$work/broken.yaml"
if "$venv/bin/kubernetes-validate" --strict --quiet "$work/broken.yaml" >/dev/null 2>&1; then
  echo "k8s-check: a Job with completions "four" passed validation: the check cannot fail" >&2
  exit 1
fi
say "a broken Job is refused, as it should be"

# What the manifests say: the scenario, the shards' count, the env of the shard and collector pods.
"$venv/bin/python" - "$k8s" "$work" <<'PY'
import sys, yaml, pathlib
k8s, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cm = yaml.safe_load((k8s / "scenario-configmap.yaml").read_text())
(work / "scenario.toml").write_text(cm["data"]["scenario.toml"])
job = yaml.safe_load((k8s / "job.yaml").read_text())
spec = job["spec"]
assert spec["completionMode"] == "Indexed", "an Indexed Job"
env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
assert spec["completions"] == spec["parallelism"] == int(env["SHARDS"]), \
    f"completions {spec['completions']}, parallelism {spec['parallelism']} and SHARDS {env['SHARDS']} must agree"
collect = yaml.safe_load((k8s / "collect-job.yaml").read_text())
cenv = {e["name"]: e.get("value") for e in collect["spec"]["template"]["spec"]["containers"][0]["env"]}
assert cenv["SHARDS"] == env["SHARDS"], "the collector waits for as many shards as the Job runs"
(work / "shards").write_text(env["SHARDS"])
PY
shards=$(cat "$work/shards")
say "the ConfigMap's scenario"
"$bin/stampede" validate "$work/scenario.toml"

say "rehearsal: $shards shards (stampede-shard, as the Job's pods run it) and the collector"
secret=k8s-check-secret
JWT_SECRET_KEY=$secret "$bin/stampede-gateway" serve --bind 127.0.0.1:0 --data-dir "$work/gateway" \
  >"$work/gateway.out" 2>"$work/gateway.err" &
gateway_pid=$!
for _ in $(seq 100); do grep -q listening "$work/gateway.out" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/gateway.out" | head -1)
[ -n "$url" ] || { echo "k8s-check: the gateway did not start: $(cat "$work/gateway.err")" >&2; exit 1; }
export PATH="$PWD/$k8s:$bin:$PATH" SHARDS="$shards" RUN_ID=rehearsal RESULTS_DIR="$work/results" \
  SCENARIO="$work/scenario.toml" TARGET_URL="$url" JWT_SECRET_KEY="$secret" LIVE_ADDR=127.0.0.1:0 \
  START_AT=$(date -u -d '+4 sec' +%FT%TZ) \
  STAMPEDE_ARGS='--users 40 --duration 3s --set load.ramp_up="1s" --set load.ramp_down="0s" --set load.graceful_stop="2s" --set load.think_time="50ms" --set observe.post_load="1s" --set actions[3].hold="1s" --set actions[4].hold="1s"'
pids=()
for index in $(seq 0 $((shards - 1))); do
  JOB_COMPLETION_INDEX=$index stampede-shard >"$work/shard-$index.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "k8s-check: shard index $i failed:" >&2; cat "$work/shard-$i.log" >&2; exit 1; }
done
WAIT_SECONDS=10 HOLD=0 stampede-collect
python3 - "$work/results/rehearsal/merged.json" "$shards" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["complete"] and r["merged"]["shards"] == int(sys.argv[2]) and not r["merged"]["missing"], r["merged"]
print(f"== k8s-check: merged {r['merged']['shards']} shards: {r['totals']['count']} requests, "
      f"{r['totals']['failed']} failed, p99 {r['totals']['p99_ms']} ms, peak {r['load']['peak_target']:.0f} users")
PY
test -s "$work/results/rehearsal/report.html"

if timeout 10 docker info >/dev/null 2>&1; then
  say "building the image (Dockerfile)"
  docker build -q -t stampede:k8s-check .
  docker run --rm stampede:k8s-check --version
  docker run --rm --entrypoint id stampede:k8s-check | grep -q 'uid=10001' || { echo "k8s-check: the image runs as root" >&2; exit 1; }
else
  say "skipped: the image build (no container builder answers here: docker info fails)"
fi
say "ok"
