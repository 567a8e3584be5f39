#!/usr/bin/env bash
# Installs dependencies, builds with -Werror, runs every test under
# AddressSanitizer and UndefinedBehaviorSanitizer (UB aborts the test), the
# concurrent code's tests under ThreadSanitizer, gives each libFuzzer target
# a short smoke run, applies the curated mutations of scripts/mutate.sh, and
# finally runs every test through ctest (last, so its summary closes the log).
# QV_SKIP_ASAN=1 / QV_SKIP_TSAN=1 / QV_SKIP_FUZZ=1 / QV_SKIP_MUTATE=1 skip
# those passes.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each pass's start and the time so far, so a slow CI run names its pass.
stage() { echo "== [$((SECONDS / 60)) min $((SECONDS % 60)) s] $*"; }
trap 'stage "test.sh ends (exit $?)"' EXIT

stage "dependencies and the -Werror build"
bash scripts/build.sh -DQV_WERROR=ON -DQV_TESTS=ON

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
# The sanitizer builds: -O1 (what the sanitizers' authors advise, and
# quicker to build than -O2) and no -Werror (warnings are the Release
# build's job above; another optimization level warns differently).
sanitized=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -DNDEBUG"
  -DQV_TESTS=ON)
# The scale tests (a million stripes, a manifest in pages) guard counts and
# sizes, not memory or thread safety; under a sanitizer they take minutes.
scale='MoreThanAMillionStripes|AManifestLargerThanAMessage'

if [ "${QV_SKIP_ASAN:-0}" != "1" ]; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer pass (every test)"
  cmake -S . -B build-asan "${generator[@]}" "${sanitized[@]}" \
    -DQV_SANITIZE=address,undefined >/dev/null
  cmake --build build-asan --parallel "$(nproc)"
  # Every test but the process-timing ones (crash points raced against a
  # commit window, RSS and shutdown-time measurements), which ASan's
  # slowdown and shadow memory would make meaningless, and the scale tests;
  # they run below.
  (cd build-asan && ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure --no-tests=error -j "$(nproc)" --timeout 900 \
    -E "^(CrashTest|FloodTest)\\.|$scale")
fi

if [ "${QV_SKIP_TSAN:-0}" != "1" ]; then
  stage "ThreadSanitizer pass (pipeline, crypto, in-process cluster)"
  cmake -S . -B build-tsan "${generator[@]}" "${sanitized[@]}" -DQV_SANITIZE=thread >/dev/null
  cmake --build build-tsan --parallel "$(nproc)" --target coordinator_test crypto_test node_test
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j "$(nproc)" \
    --timeout 300 -R '^(PipelineTest|LocalStoreTest|ChunkCipherTest|VssTest|InProcessClusterTest)\.' \
    -E "$scale")
fi

if [ "${QV_SKIP_FUZZ:-0}" != "1" ]; then
  stage "fuzz smoke"
  bash scripts/fuzz.sh 20
fi

if [ "${QV_SKIP_MUTATE:-0}" != "1" ]; then
  # Every check of the README's threat model has a test that fails without it
  # (scripts/mutations.sh lists them); any survivor fails the run.
  stage "curated mutations"
  bash scripts/mutate.sh
fi

stage "all tests"
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 300)
