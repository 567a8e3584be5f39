#!/usr/bin/env bash
# The window in which a release is not yet covered by a peer's countersigned
# checkpoint: on a local 6-node cluster with the default witness interval,
# each run restores by quorum, then times how long until node-03 holds a
# witness record of node-02's log at or past node-02's release entry.
# Usage: scripts/bench-witness.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
bash scripts/build.sh >/dev/null
command -v sqlite3 >/dev/null || { echo "bench-witness needs the sqlite3 command" >&2; exit 1; }
qv="$PWD/build/cli/qv"
source scripts/ceremony.sh
bench_cluster bench-witness 7740
"$qv" sample --out model --size 1MiB --shards 1 >/dev/null
id=$("$qv" backup --cluster cl/cluster.toml --key cl/coordinator.key model 2>/dev/null)
echo "== witness_interval_ms: $(sed -n 's/^witness_interval_ms = //p' cl/nodes/node-02/node.toml)"
for i in $(seq 1 "$runs"); do
  flags=$(quorum_approve "$id" "req$i")
  # shellcheck disable=SC2086
  "$qv" restore run --cluster cl/cluster.toml --request "req$i" $flags --dest "out$i" >/dev/null
  t0=$(date +%s%N)
  seq=$(sqlite3 cl/nodes/node-02/data/audit.db "SELECT MAX(seq) FROM audit WHERE kind='release'")
  until [ "$(sqlite3 cl/nodes/node-03/data/audit.db \
      "SELECT COUNT(*) FROM witnessed WHERE subject='node-02' AND seq>=$seq")" -gt 0 ]; do
    sleep 0.05
  done
  echo "run $i: node-02's release (entry $seq) countersigned by node-03 $(( ($(date +%s%N) - t0) / 1000000 )) ms after the restore ended"
done
"$qv" cluster down --dir cl >/dev/null
trap - EXIT
cd .. && [ -n "${QV_BENCH_KEEP:-}" ] || rm -rf "$work"
