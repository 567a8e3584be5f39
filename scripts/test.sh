#!/usr/bin/env bash
# Installs dependencies, builds with -Werror, runs every test through ctest,
# runs the concurrent code's tests again under ThreadSanitizer, and gives each
# libFuzzer target a short smoke run. QV_SKIP_TSAN=1 / QV_SKIP_FUZZ=1 skip those.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DQV_WERROR=ON -DQV_TESTS=ON
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 300)

if [ "${QV_SKIP_TSAN:-0}" != "1" ]; then
  echo "== ThreadSanitizer pass (pipeline, crypto)"
  generator=()
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  cmake -S . -B build-tsan "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DQV_SANITIZE=thread -DQV_WERROR=ON -DQV_TESTS=ON >/dev/null
  cmake --build build-tsan --parallel "$(nproc)" --target coordinator_test crypto_test node_test qv
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j "$(nproc)" \
    --timeout 300 -R '^(PipelineTest|LocalStoreTest|ChunkCipherTest|VssTest|InProcessClusterTest)\.')
fi

if [ "${QV_SKIP_FUZZ:-0}" != "1" ]; then
  bash scripts/fuzz.sh 20
fi
