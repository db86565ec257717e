#!/usr/bin/env bash
# The Python SDK front end's demo: set up what is missing (Docker engine, npm dependencies, images,
# the local Redis), install the front end into a virtual environment of its own (no package index),
# then run the SDK page's Redis pub/sub pair as its users do: python3 consumer.py & python3 producer.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh redis
venv=.cache/python-sdk-venv
[ -x "$venv/bin/python3" ] || python3 -m venv "$venv"
PIP_NO_INDEX=1 "$venv/bin/pip" install --quiet --force-reinstall ./python-sdk
# A copy, so that the example folder stays as shipped (the pair writes output/ beside its scripts).
work=$(mktemp -d /tmp/airlock-python-sdk-demo-XXXXXX)
cp -r examples/python-sdk/redis-pubsub/. "$work/"
cd "$work"
# shellcheck disable=SC1091
. "$OLDPWD/$venv/bin/activate"
python3 consumer.py & python3 producer.py
wait
echo
echo "the consumer processed $(grep -c . output/results.txt) messages: $work/output/results.txt"
