#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test (typecheck, Python trainer
# unit tests, Node tests including both brokers and the browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh all
bash scripts/install-node-deps.sh
# the arm64 Node the qemu tests run (a cache outside node_modules; test/helpers/arm64.ts would fetch it on demand)
bash scripts/install-arm64-node.sh >/dev/null || echo "arm64 node not installed: the arm64 (qemu) tests will skip, saying why" >&2
npm test
