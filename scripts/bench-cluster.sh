#!/usr/bin/env bash
# Backs up an artifact through a local 6-node cluster on 127.0.0.1 (every
# process on this machine) and restores it with a quorum (a request, 3
# custodian approvals, `qv restore run`), and prints MB/s beside the
# in-process figures and the compute limit of the whole path measured by
# `qv bench` in the same run; then times Debian's restic on the same file
# (one encrypted copy, no erasure coding, no threshold custody) and reports
# peak RSS of the coordinator and of every node.
# Usage: scripts/bench-cluster.sh [SIZE_MIB]   (default 1024; needs ~4x free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
bash scripts/build.sh >/dev/null
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
for p in restic time; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$p" >/dev/null
done
qv="$PWD/build/cli/qv"
source scripts/ceremony.sh
work="${QV_BENCH_DIR:-$PWD/bench-cluster}"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
trap '"$qv" cluster down --dir cl >/dev/null 2>&1 || true' EXIT

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
now() { date +%s.%N; }
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "$2"; }

echo "== machine limits (qv bench, same run)"
"$qv" bench --size 512MiB --json > bench.json
"$qv" bench --size 512MiB 2>/dev/null | sed 's/^/  /'
backup_limit=$(field cluster_backup_limit_mb_per_s bench.json)
restore_limit=$(field cluster_restore_limit_mb_per_s bench.json)

echo "== artifact: ${size_mib} MiB of random bytes"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > artifact.bin
bytes=$(stat -c %s artifact.bin)

"$qv" cluster init --dir cl --base-port "${QV_BENCH_PORT:-7600}" >/dev/null
"$qv" cluster up --dir cl >/dev/null

/usr/bin/time -v "$qv" backup --cluster cl/cluster.toml --key cl/coordinator.key --json artifact.bin \
  > backup.json 2> backup.time
id=$(sed -n 's/.*"backup_id":"\([0-9a-f]*\)".*/\1/p' backup.json)
b_secs=$(field seconds backup.json)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
flags=$(quorum_approve "$id" request)
# shellcheck disable=SC2086
/usr/bin/time -v "$qv" restore run --cluster cl/cluster.toml --request request $flags \
  --dest restored --json > restore.json 2> restore.time
r_secs=$(field seconds restore.json)
cmp artifact.bin restored/artifact.bin && echo "  restored bytes identical"
coord_rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' backup.time)
coord_rss_r=$(sed -n 's/.*Maximum resident set size (kbytes): //p' restore.time)
node_rss=""
for f in cl/nodes/*/node.pid; do
  node_rss="$node_rss $(sed -n 's/VmHWM:\s*\([0-9]*\) kB/\1/p' "/proc/$(cat "$f")/status")"
done
"$qv" cluster down --dir cl >/dev/null
trap - EXIT

echo "== restic (Debian's), same artifact, local repository"
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$work/restic-repo"
restic init >/dev/null 2>&1
t0=$(now); restic backup --quiet artifact.bin >/dev/null; t1=$(now)
restic restore --quiet latest --target restic-out >/dev/null; t2=$(now)
rb=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
rr=$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')

b_rate=$(mbps "$bytes" "$b_secs"); r_rate=$(mbps "$bytes" "$r_secs")
echo
printf '%-34s %8s %8s %9s\n' "" "MB/s" "limit" "of limit"
printf '%-34s %8s %8.0f %8.1f%%\n' "quorumvault backup (6 nodes)" "$b_rate" "$backup_limit" \
  "$(awk -v a="$b_rate" -v b="$backup_limit" 'BEGIN { print 100 * a / b }')"
printf '%-34s %8s %8.0f %8.1f%%\n' "quorumvault restore (6 nodes)" "$r_rate" "$restore_limit" \
  "$(awk -v a="$r_rate" -v b="$restore_limit" 'BEGIN { print 100 * a / b }')"
printf '%-34s %8s   (%.2fs; quorumvault %.2fs: %.2fx faster)\n' "restic backup" "$(mbps "$bytes" "$rb")" \
  "$rb" "$b_secs" "$(awk -v a="$rb" -v b="$b_secs" 'BEGIN { print a / b }')"
printf '%-34s %8s   (%.2fs; quorumvault %.2fs: %.2fx faster)\n' "restic restore" "$(mbps "$bytes" "$rr")" \
  "$rr" "$r_secs" "$(awk -v a="$rr" -v b="$r_secs" 'BEGIN { print a / b }')"
echo "peak RSS: coordinator backup ${coord_rss} KiB, restore ${coord_rss_r} KiB; nodes (KiB):${node_rss}"
cd .. && rm -rf "$work"
