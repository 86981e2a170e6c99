# stampede — see README.md. Every target runs from a fresh clone with Rust and PostgreSQL 15 installed.
.PHONY: run tui reproduce k8s-check bench gate baseline validate build test-build release test fuzz lint fmt pg pg-stop gateway token clean

CARGO ?= cargo
BIND ?= 127.0.0.1:4444
PROFILE ?= fixed

## run: the main job: the smoke scenario against a spawned reference gateway on embedded SQLite.
##      SCENARIO=… to run another; RUN_ARGS="--users 50 --duration 5s" for overrides; BUILD=debug to skip
##      the release build.
SCENARIO ?= scenarios/smoke.toml
BUILD ?= release
RUN_ARGS ?=
# The build every target that runs the binaries starts with: release, or debug with BUILD=debug.
BUILD_BINARIES = $(CARGO) build --workspace $(if $(filter release,$(BUILD)),--release,)
run:
	$(BUILD_BINARIES)
	target/$(BUILD)/stampede run $(SCENARIO) $(RUN_ARGS)

## tui: the same run with the live dashboard (q stops the load and still writes the results).
tui:
	$(BUILD_BINARIES)
	target/$(BUILD)/stampede-tui run $(SCENARIO) $(RUN_ARGS)

## reproduce: the field failure and its fix on the field's topology (three gateway replicas behind nginx,
##            PgBouncer in front of a throwaway PostgreSQL, an upstream MCP server with the field's latency),
##            legacy then fixed, each with its post-load window; writes results, a comparison, a gate of
##            legacy against fixed and report.html under results/reproduce/. ABLATE=1 also runs fixed with one
##            fix off at a time; TOPOLOGY=single runs mixed-4000 on one gateway instead; SMALL=1 is a
##            seconds-long version (CI); REPEAT=3 runs each profile three times and shows each figure's
##            median and range.
ABLATE ?= 0
SMALL ?= 0
REPEAT ?= 1
TOPOLOGY ?= field
reproduce:
	$(BUILD_BINARIES)
	scripts/reproduce.sh --bin target/$(BUILD) --topology $(TOPOLOGY) --repeat $(REPEAT) $(if $(filter 1,$(ABLATE)),--ablate,) $(if $(filter 1,$(SMALL)),--small,)

## k8s-check: deploy/kubernetes without a cluster: the manifests against the Kubernetes schemas (offline,
##            kubernetes-validate in a venv), a rehearsal of the shards and the collector the Job runs, and
##            the image built where a container builder answers.
k8s-check:
	$(BUILD_BINARIES)
	scripts/k8s-check.sh --bin target/$(BUILD)

## bench: stampede against oha and wrk (installed when missing), SSE memory, gateway throughput on SQLite
##        and a throwaway PostgreSQL, every REST read and the writes, mixed-4000; writes results/bench/<date>.json
##        and .md. Takes about 25 minutes.
##        BENCH_ARGS="--rounds 5 --connections 64,1000" to change it.
BENCH_ARGS ?=
bench: release
	STAMPEDE_PG_STATE=$(CURDIR)/.pg/bench-state scripts/pg.sh with \
	  sh -c 'target/release/stampede-bench --install-peers --postgres "$$PG_URL" $(BENCH_ARGS)'

## gate: ci-smoke on PostgreSQL: fixed passes results/baselines/ci-smoke.json and legacy fails it; then,
##       against a baseline recorded on the spot, unchanged runs are gated (false alarms counted) and injected
##       1.5x/2x slowdowns fail (about 8 minutes).
gate: test-build
	scripts/ci-gate.sh target/debug

## baseline: re-record results/baselines/ci-smoke.json (the debug binaries `make test` builds and CI
##           gates, 5 runs, a throwaway PostgreSQL).
baseline: test-build
	STAMPEDE_PG_STATE=$(CURDIR)/.pg/baseline-state scripts/pg.sh with sh -c 'target/debug/stampede baseline \
	  scenarios/ci-smoke.toml --repeat 5 --set target.database_url="$$PG_URL" -o results/baselines/ci-smoke.json'

## validate: check every shipped scenario.
validate: build
	target/debug/stampede validate scenarios/*.toml

## build: debug build of the whole workspace.
build:
	$(CARGO) build --workspace

# The debug binaries as the tests build them (dependency features unified with the dev-dependencies):
# the gate and its baseline use these, the build CI gates.
test-build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --workspace --release

## test: fmt check, clippy -D warnings, every test (starts its own PostgreSQL unless STAMPEDE_TEST_PG is set).
test: lint
	scripts/test.sh

## fuzz: the generated-input properties (every parser, the round trips) with many more cases than
##       `make test` runs: FUZZ_CASES per property (default 20000; minutes each). A failure prints the
##       smallest input that fails; proptest keeps it beside the test (*.proptest-regressions) and runs it
##       first next time. Then schemathesis against the gateway on both backends, FUZZ_EXAMPLES per
##       operation (default 500) with a new seed, which it prints.
FUZZ_CASES ?= 20000
FUZZ_EXAMPLES ?= 500
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) STAMPEDE_SCHEMATHESIS_EXAMPLES=$(FUZZ_EXAMPLES) STAMPEDE_SCHEMATHESIS_SEED=random \
	  scripts/test.sh --no-capture -E 'test(/prop_/) | test(/schemathesis/)'

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## pg: start a throwaway PostgreSQL 15 cluster on a free port and print its URL; pg-stop removes it.
pg:
	@scripts/pg.sh start

pg-stop:
	@scripts/pg.sh stop

## gateway: the reference gateway alone on embedded SQLite (data/), PROFILE=fixed|legacy.
gateway: release
	target/release/stampede-gateway serve --bind $(BIND) --profile $(PROFILE) --data-dir data

## token: mint a bearer token for the gateway (default secret).
token: release
	@target/release/stampede-gateway token --sub admin@example.com --exp 60m

clean:
	$(CARGO) clean
	rm -rf data
