#!/usr/bin/env bash
# npm packages from the lockfile. onnxruntime-node's own installer would try to download CUDA
# binaries; its CPU binaries ship inside the package, so the installer is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
node -e 'const [maj]=process.versions.node.split(".").map(Number); if (maj<20) { console.error("EdgeFleet needs Node.js 20 or newer, found "+process.version); process.exit(1) }'
if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "npm packages: up to date"
  exit 0
fi
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
