#!/usr/bin/env bash
# Debian/Ubuntu packages EdgeFleet needs: a compiler for better-sqlite3's native addon, PyTorch + ONNX for the trainer, the built-in dataset,
# Mosquitto (the real broker the tests run against) with the headers EdgeFleet's auth plugin compiles against, Chromium (dashboard tests) and, for the tests only, qemu-user with an
# arm64 glibc (the agent's arm64 tarball and onnxruntime's arm64 binary run under emulation: test/helpers/arm64.ts).
# Installs only what is missing; needs root or sudo.
set -euo pipefail
want_build=(g++ make python3)
want_python=(python3-torch python3-onnx python3-torchvision python3-numpy python3-pil dataset-fashion-mnist)
want_broker=(mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev libssl-dev gcc)
want_browser=(chromium)
want_arm64=(qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross)
case "${1:-all}" in
  runtime) want=("${want_build[@]}" "${want_python[@]}" "${want_broker[@]}") ;;
  all) want=("${want_build[@]}" "${want_python[@]}" "${want_broker[@]}" "${want_browser[@]}" "${want_arm64[@]}") ;;
  *) echo "usage: $0 [runtime|all]" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# the packaged broker service is not needed: EdgeFleet and its tests start their own
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true; fi
echo "system packages: installed"
