#!/usr/bin/env bash
# Installs quorumvault's build and test dependencies from Debian's packages.
# Idempotent: packages already present are left alone, and apt is not touched
# at all when nothing is missing. Needs root (or sudo) only when it installs.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libsodium-dev libssl-dev libisal-dev libasio-dev libboost-serialization-dev
  libsqlite3-dev libcli11-dev libgtest-dev libtomlplusplus-dev nlohmann-json3-dev
  systemd  # systemd-analyze verify checks configs/systemd (tests/cli_test.cc)
  libp11-kit-dev softhsm2  # PKCS#11 URIs and header; a real token in tests (crypto/pkcs11.h)
  zsh groff-base  # the generated zsh completion and man page are loaded and linted in tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
