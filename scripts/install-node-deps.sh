#!/usr/bin/env bash
# npm packages from the lockfile, saying what it does and why while it does it.
#
# No dependency runs an install script unasked: `npm ci --ignore-scripts`, then only the two that must run.
# - onnxruntime-node's installer would download CUDA binaries from GitHub; its CPU binaries ship inside the package,
#   so it never runs (package.json's allowScripts denies it too, but only recent npm 11 releases read that field;
#   ONNXRUNTIME_NODE_INSTALL=skip covers a broad `npm rebuild`).
# - esbuild's checks its platform binary (tsx runs the TypeScript through it).
# - better-sqlite3's tries prebuild-install, which downloads a prebuilt binary from GitHub releases, and falls back to
#   compiling SQLite + its C++ addon with node-gyp. Where GitHub is unreachable it compiles (minutes); no npm or Debian
#   package ships this addon prebuilt. The compiled addon goes into prebuild-install's own cache (~/.npm/_prebuilds),
#   so the next clone on this machine (same version, Node ABI, platform) reuses it instead of compiling again.
set -euo pipefail
cd "$(dirname "$0")/.."
node -e 'const [maj]=process.versions.node.split(".").map(Number); if (maj<20) { console.error("EdgeFleet needs Node.js 20 or newer, found "+process.version); process.exit(1) }'
if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] && [ -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "npm packages: up to date"
  exit 0
fi
export ONNXRUNTIME_NODE_INSTALL=skip
start=$SECONDS
echo "npm packages: installing package-lock.json (npm ci with install scripts off; about 15 s, more on a first download from the npm registry)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "npm packages: unpacked in $((SECONDS - start)) s"
echo "esbuild: checking its platform binary (tsx runs the TypeScript through it)"
npm rebuild esbuild --no-audit --no-fund --loglevel=error >/dev/null

# better-sqlite3: prebuild-install (its own cache, then GitHub), else compile with a heartbeat so the wait is never silent
bs_version=$(node -p 'require("./node_modules/better-sqlite3/package.json").version')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "better-sqlite3 $bs_version: asking prebuild-install for a prebuilt binary (its cache in ~/.npm/_prebuilds, then GitHub releases)"
if (cd node_modules/better-sqlite3 && timeout 120 ../.bin/prebuild-install --verbose >"$log" 2>&1); then
  if grep -q 'found cached prebuild' "$log"; then echo "better-sqlite3 $bs_version: reused the addon compiled earlier on this machine"; else echo "better-sqlite3 $bs_version: prebuilt binary downloaded"; fi
else
  why=$(grep -m1 'warn install' "$log" | sed 's/^prebuild-install warn install //' || true)
  cached=$(sed -n 's/^prebuild-install info looking for cached prebuild @ //p' "$log" | head -1)
  jobs=$(nproc 2>/dev/null || echo 2)
  echo "better-sqlite3 $bs_version: no prebuilt binary (${why:-prebuild-install failed}); no npm or Debian package ships this addon,"
  echo "  so compiling SQLite and the addon from source with node-gyp on $jobs cores: about 2.5 minutes on 2 cores (needs g++, make, python3)"
  # build-from-source: the install script's prebuild-install exits at once instead of asking GitHub a second time
  JOBS=$jobs npm_config_build_from_source=better-sqlite3 npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null && sleep 1; done
    kill -0 "$pid" 2>/dev/null && echo "  still compiling better-sqlite3: $((SECONDS - start)) s since the install started"
  done
  if ! wait "$pid"; then
    cat "$log" >&2
    echo "better-sqlite3: compiling failed (output above); install g++, make and python3 (scripts/install-system-deps.sh)" >&2
    exit 1
  fi
  echo "better-sqlite3 $bs_version: compiled in $((SECONDS - start)) s since the install started"
  # into prebuild-install's own cache, in its tarball layout: the next clone on this machine (same version, Node ABI,
  # platform) finds it there, even through a plain `npm ci`
  if [ -n "$cached" ]; then
    mkdir -p "$(dirname "$cached")"
    tar -czf "$cached.partial" -C node_modules/better-sqlite3 build/Release/better_sqlite3.node && mv "$cached.partial" "$cached"
    echo "better-sqlite3 $bs_version: kept the compiled addon in $cached for the next install"
  fi
fi
echo "npm packages: done in $((SECONDS - start)) s"
