#!/usr/bin/env bash
# `npm test`: set up what is missing (Docker engine, brokers, images), then the unit and
# integration suites against the real engine and brokers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/runner/cli/main.js schema --check policies/policy.schema.json
npx vitest run "$@"
