#!/usr/bin/env bash
# Builds every libFuzzer target with clang (frame decoder + handshake,
# message parser, quorum records) and runs each for SECONDS (default 20): a
# smoke run for CI; give it longer for a real campaign. A target that is
# missing, crashes or does not finish fails the script. Corpora live in
# build-fuzz/corpus/.
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
targets=(fuzz_frames fuzz_messages fuzz_quorum)
cmake --build build-fuzz --parallel "$(nproc)" --target "${targets[@]}"
for t in "${targets[@]}"; do
  # A target that was not built, or that crashes, fails the run: a smoke
  # check must never pass because its subject is missing.
  if [ ! -x "build-fuzz/$t" ]; then
    echo "fuzz: build-fuzz/$t was not built" >&2
    exit 1
  fi
  mkdir -p "build-fuzz/corpus/$t"
  echo "== $t for ${seconds}s"
  rc=0
  "build-fuzz/$t" -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048 \
    "build-fuzz/corpus/$t" >"build-fuzz/$t.log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+\s+DONE|Done|==[0-9]+==ERROR|SUMMARY)" "build-fuzz/$t.log" || true
  if [ "$rc" -ne 0 ] || ! grep -qE "^Done [0-9]+ runs" "build-fuzz/$t.log"; then
    echo "fuzz: $t failed (exit $rc); see build-fuzz/$t.log" >&2
    tail -n 30 "build-fuzz/$t.log" >&2
    exit 1
  fi
done
echo "fuzz smoke: ${#targets[@]} targets, no crashes"
