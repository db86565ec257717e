#!/usr/bin/env bash
# The quick start's main job: set up what is missing (Docker engine, npm dependencies, images,
# the local Redis), then run example 1 — a policy-gated Redis producer/consumer pair.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh redis
exec node dist/runner/cli/main.js up examples/redis-pubsub/run.yaml
