#!/usr/bin/env bash
# The whole restore ceremony, end to end, through the cluster beside the
# file flow (issue 16), on a local 6-node cluster on 127.0.0.1 (every
# process on this machine). Each run times, as the people involved would
# wait for it (no human delay counted):
#   cluster: qv restore request --submit, three custodians' qv approve
#            --request ID (each fetches the request and manifest from the
#            nodes and posts its vote to all six), qv restore run --request
#            REQ with no approval files (the votes collected from the nodes);
#   files:   qv restore request, three qv approve of the files, qv restore
#            run --approval x3.
# Beside them, in the same run: `qv status` (process start, a handshake and a
# health round trip with every node), the floor any cluster command pays;
# each flow runs five qv processes.
# Usage: scripts/bench-ceremony.sh [RUNS] [SIZE]   (default 11 runs of 1MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-11}"
size="${2:-1MiB}"
bash scripts/build.sh >/dev/null
qv="$PWD/build/cli/qv"
source scripts/ceremony.sh

bench_cluster bench-ceremony 7750
"$qv" sample --out model --size "$size" --shards 1 >/dev/null
id=$("$qv" backup --cluster cl/cluster.toml --key cl/coordinator.key model 2>/dev/null)
echo "== backup $id ($size sample model), $runs ceremonies each way"

: > cluster.ms; : > files.ms; : > status.ms
for i in $(seq 1 "$runs"); do
  t0=$(date +%s%N)
  "$qv" restore request --cluster cl/cluster.toml --backup "$id" --purpose benchmark \
    --destination bench --out "sub$i" --submit >sub.out
  rid=$(grep -o 'approve --request [0-9a-f]*' sub.out | awk '{print $3}')
  for c in c1 c2 c3; do
    "$qv" approve --yes --cluster cl/cluster.toml --key "cl/custodians/$c.key" --request "$rid" \
      >/dev/null 2>&1
  done
  "$qv" restore run --cluster cl/cluster.toml --request "sub$i" --dest "cout$i" >/dev/null
  ms_since "$t0" >> cluster.ms
  diff -r model "cout$i" >/dev/null || { echo "run $i: restored files differ" >&2; exit 1; }

  t0=$(date +%s%N)
  flags=$(quorum_approve "$id" "req$i")
  # shellcheck disable=SC2086
  "$qv" restore run --cluster cl/cluster.toml --request "req$i" $flags --dest "fout$i" >/dev/null
  ms_since "$t0" >> files.ms
  diff -r model "fout$i" >/dev/null || { echo "run $i: restored files differ" >&2; exit 1; }
  rm -rf "cout$i" "fout$i"

  t0=$(date +%s%N)
  "$qv" status --cluster cl/cluster.toml --key cl/operator.key >/dev/null
  ms_since "$t0" >> status.ms
done
echo "every restore verified and identical to the original"
printf '%-40s %s\n' "through the cluster (submit..restore)" "$(stats cluster.ms)"
printf '%-40s %s\n' "file flow (request..restore)" "$(stats files.ms)"
printf '%-40s %s\n' "floor: qv status (6 handshakes)" "$(stats status.ms)"
"$qv" cluster down --dir cl >/dev/null
trap - EXIT
cd .. && [ -n "${QV_BENCH_KEEP:-}" ] || rm -rf "$work"
