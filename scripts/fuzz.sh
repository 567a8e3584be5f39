#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (frame decoder + handshake, message
# parser) and runs each for SECONDS (default 20): a smoke run for CI; give
# it longer for a real campaign. Corpora live in build-fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
bash scripts/install-deps.sh >/dev/null
need=()
command -v clang++ >/dev/null 2>&1 || need+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed" || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQV_FUZZ=ON -DQV_TESTS=OFF >/dev/null
cmake --build build-fuzz --parallel "$(nproc)" --target fuzz_frames fuzz_messages
for t in fuzz_frames fuzz_messages fuzz_quorum; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "== $t for ${seconds}s"
  "build-fuzz/$t" -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048 \
    "build-fuzz/corpus/$t" 2>&1 | grep -E "^(#[0-9]+\s+DONE|Done|==[0-9]+==ERROR|SUMMARY)" || true
  test "${PIPESTATUS[0]}" -eq 0
done
echo "fuzz smoke: no crashes"
