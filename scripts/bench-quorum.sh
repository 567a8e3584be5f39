#!/usr/bin/env bash
# End-to-end latency of a quorum restore through a local 6-node cluster on
# 127.0.0.1 (every process on this machine). Each run makes a fresh signed
# request with 3 custodian approvals (M=3 of 5), then times
# `qv restore run` as a user waits for it: process start, Noise handshakes
# with every node, each node's certificate check, durable request spend and
# audit entries, the sealed share release, fragment fetch, verification
# against the signed manifest, and the verified files on disk.
# Beside it, in the same run: `qv status` (process start, a handshake and a
# health round trip with every node), the floor any cluster command pays.
# Usage: scripts/bench-quorum.sh [RUNS] [SIZE]   (default 21 runs of 1MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-21}"
size="${2:-1MiB}"
bash scripts/build.sh >/dev/null
qv="$PWD/build/cli/qv"
source scripts/ceremony.sh

bench_cluster bench-quorum 7700
"$qv" sample --out model --size "$size" --shards 1 >/dev/null
id=$("$qv" backup --cluster cl/cluster.toml --key cl/coordinator.key model 2>/dev/null)
echo "== backup $id ($size sample model), $runs quorum restores"

: > restore.ms; : > status.ms
for i in $(seq 1 "$runs"); do
  flags=$(quorum_approve "$id" "req$i")
  t0=$(date +%s%N)
  # shellcheck disable=SC2086
  "$qv" restore run --cluster cl/cluster.toml --request "req$i" $flags --dest "out$i" >/dev/null
  ms_since "$t0" >> restore.ms
  diff -r model "out$i" >/dev/null || { echo "run $i: restored files differ" >&2; exit 1; }
  rm -rf "out$i"
  t0=$(date +%s%N)
  "$qv" status --cluster cl/cluster.toml --key cl/operator.key >/dev/null
  ms_since "$t0" >> status.ms
done
echo "every restore verified and identical to the original"
printf '%-34s %s\n' "quorum restore (qv restore run)" "$(stats restore.ms)"
printf '%-34s %s\n' "floor: qv status (6 handshakes)" "$(stats status.ms)"
"$qv" audit verify --cluster cl/cluster.toml | tail -2
"$qv" cluster down --dir cl >/dev/null
trap - EXIT
cd .. && [ -n "${QV_BENCH_KEEP:-}" ] || rm -rf "$work"
