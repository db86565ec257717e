#!/usr/bin/env bash
# `npm test`: set up what is missing (Docker engine, brokers, images), then the unit and integration
# suites against the real engine and brokers, then the kubernetes suite on a local single-node
# cluster (scripts/k8s/test.sh: brought up for it and down afterwards; it needs root).
# With arguments, they go to vitest as they are (and the kubernetes suite runs only if asked for
# with --project kubernetes). AIRLOCK_SKIP_KUBERNETES=1 leaves the cluster out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Lint and format check (Biome): seconds, and before anything slow.
npx biome check --error-on-warnings
# Types, the tests' included: vitest runs them without a type check, so a test that drifted from the code it drives fails here.
npx tsc -p tsconfig.test.json
node dist/runner/cli/main.js schema --check policies/policy.schema.json
node dist/runner/cli/main.js schema --run --check policies/run.schema.json
mkdir -p .airlock
rm -f .airlock/vitest.json .airlock/vitest-kubernetes.json
status=0
if [ "$#" -gt 0 ]; then
  case " $* " in
    *" --project kubernetes "*) bash scripts/k8s/test.sh "$@" || status=$? ;;
    *) npx vitest run --project unit --project integration --reporter=default --reporter=json --outputFile.json=.airlock/vitest.json "$@" || status=$? ;;
  esac
else
  npx vitest run --project unit --project integration --reporter=default --reporter=json --outputFile.json=.airlock/vitest.json || status=$?
  if [ "${AIRLOCK_SKIP_KUBERNETES:-}" = 1 ]; then
    echo "[airlock] AIRLOCK_SKIP_KUBERNETES=1: the kubernetes suite did not run" >&2
  elif [ "$(id -u)" != 0 ]; then
    echo "[airlock] the kubernetes suite needs root (it runs a local cluster): skipped" >&2
  else
    bash scripts/k8s/test.sh || status=$?
  fi
fi
# The counts, then what failed and why, last: a CI log often shows only its end.
node scripts/test-summary.mjs || true
exit $status
