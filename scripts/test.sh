#!/usr/bin/env sh
# The whole test suite: type check, the main suite (SQLite), the suites that drive a store again on
# PostgreSQL (vitest.postgres.config.ts), then the Kubernetes suite (which builds its control plane
# from Go modules on first use, cached under ~/.cache/fanout-k8s). Every suite runs even when one
# before it failed, so one run shows every failure; the exit code is non-zero if any did.
set -u
cd "$(dirname "$0")/.."
npx tsc --noEmit -p . || exit 1
status=0
npx vitest run "$@" || status=1
FANOUT_TEST_STORE=postgres npx vitest run -c vitest.postgres.config.ts "$@" || status=1
npx vitest run -c vitest.k8s.config.ts "$@" || status=1
exit "$status"
