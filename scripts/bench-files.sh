#!/usr/bin/env bash
# Many small files through a local 6-node cluster: COUNT files of 64 bytes
# in folders of 1,000, backed up, restored by quorum and compared; prints
# the signed manifest's size and the times.
# Usage: scripts/bench-files.sh [COUNT]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-1000000}"
bash scripts/build.sh >/dev/null
qv="$PWD/build/cli/qv"
source scripts/ceremony.sh
bench_cluster bench-files 7760
t0=$(date +%s.%N)
python3 - "$count" <<'PY'
import os, sys
n = int(sys.argv[1])
for i in range(n):
    d = "many/d%04d" % (i // 1000)
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open("%s/f%07d.bin" % (d, i), "wb") as f:
        f.write(("%064d" % i).encode())
PY
t1=$(date +%s.%N)
id=$("$qv" backup --cluster cl/cluster.toml --key cl/coordinator.key many 2>backup.err) || {
  cat backup.err >&2; exit 1; }
t2=$(date +%s.%N)
manifest=$(stat -c %s cl/nodes/node-00/data/backups/"$id"/manifest)
flags=$(quorum_approve "$id" req)
t3=$(date +%s.%N)
# shellcheck disable=SC2086
"$qv" restore run --cluster cl/cluster.toml --request req $flags --dest restored >/dev/null
t4=$(date +%s.%N)
diff -r many restored >/dev/null && echo "restored tree identical"
awk -v n="$count" -v m="$manifest" -v c="$t1-$t0" -v b="$(echo "$t2 - $t1" | bc)" \
    -v r="$(echo "$t4 - $t3" | bc)" 'BEGIN {
  printf "%d files: signed manifest %.1f MiB; backup %.1f s, quorum restore %.1f s\n", n, m / 1048576, b, r }'
"$qv" cluster down --dir cl >/dev/null
trap - EXIT
cd .. && [ -n "${QV_BENCH_KEEP:-}" ] || rm -rf "$work"
