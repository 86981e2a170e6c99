#!/usr/bin/env bash
# Run every test. PostgreSQL tests use $STAMPEDE_TEST_PG when it is set; otherwise this starts a
# throwaway cluster of its own (scripts/pg.sh) and removes it afterwards, whatever happens.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

if [ -z "${STAMPEDE_TEST_PG:-}" ]; then
  export STAMPEDE_PG_STATE="$here/.pg/test-state"
  trap 'scripts/pg.sh stop' EXIT
  STAMPEDE_TEST_PG=$(scripts/pg.sh start)
  export STAMPEDE_TEST_PG
  echo "test PostgreSQL: $STAMPEDE_TEST_PG"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
