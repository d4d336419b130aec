#!/usr/bin/env sh
# The whole test suite: type check, the main suite, then the Kubernetes suite (which builds its
# control plane from Go modules on first use, cached under ~/.cache/fanout-k8s). Both suites run
# even when the first fails, so one run shows every failure; the exit code is non-zero if any did.
set -u
cd "$(dirname "$0")/.."
npx tsc --noEmit -p . || exit 1
status=0
npx vitest run "$@" || status=1
npx vitest run -c vitest.k8s.config.ts "$@" || status=1
exit "$status"
