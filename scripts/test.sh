#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test (typecheck, Python trainer
# unit tests, Node tests including both brokers and the browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh all
bash scripts/install-node-deps.sh
npm test
