#!/usr/bin/env bash
# The quick start's main job: set up what is missing, then run the hello agent through the gate
# against the local Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh redis
exec node dist/runner/cli/main.js run examples/hello/agent.ts --policy policies/hello.yaml --output out/hello
