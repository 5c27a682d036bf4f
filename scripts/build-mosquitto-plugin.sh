#!/usr/bin/env bash
# Compiles EdgeFleet's Mosquitto auth plugin (control-plane/broker/mosquitto-plugin/edgefleet_auth.c) into $1.
# Needs gcc, Mosquitto's plugin headers (Debian: mosquitto-dev, libmosquitto-dev) and OpenSSL's (libssl-dev);
# scripts/install-system-deps.sh installs them. Mosquitto 2.0.0 or later loads it (plugin API v5).
set -euo pipefail
out="${1:?usage: $0 OUTPUT.so}"
src="$(cd "$(dirname "$0")/.." && pwd)/control-plane/broker/mosquitto-plugin/edgefleet_auth.c"
tmp="$out.tmp.$$"
gcc -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Werror -fPIC -shared -o "$tmp" "$src" -lcrypto
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
