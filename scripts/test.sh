#!/usr/bin/env bash
# `npm test`: set up what is missing (Docker engine, brokers, images), then the unit and
# integration suites against the real engine and brokers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/runner/cli/main.js schema --check policies/policy.schema.json
node dist/runner/cli/main.js schema --run --check policies/run.schema.json
mkdir -p .airlock
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.airlock/vitest.json "$@" || status=$?
# One plain closing line for CI systems that read it.
node -e 'const r=JSON.parse(require("fs").readFileSync(".airlock/vitest.json","utf8")); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests+r.numTodoTests} skipped`)' || true
exit $status
