#!/usr/bin/env bash
# The quick start: installs what is needed, then brings up the control plane with its embedded
# broker, an SQLite file and a local agent, and shows the fleet. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh runtime
bash scripts/install-node-deps.sh
exec node bin/edgefleet.mjs up --demo "$@"
