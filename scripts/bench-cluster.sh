#!/usr/bin/env bash
# Backs up an artifact through a local 6-node cluster on 127.0.0.1 (every
# process on this machine) and restores it with a quorum (a request, 3
# custodian approvals, `qv restore run`), and prints MB/s beside the
# in-process figures and the compute limit of the whole path measured by
# `qv bench` in the same run; then times Debian's restic on the same file
# (one encrypted copy, no erasure coding, no threshold custody) and reports
# peak RSS of the coordinator and of every node.
# Each measurement is taken ROUNDS times (default 3; this VM's figures vary
# by a third from run to run) and the median is reported.
# Usage: scripts/bench-cluster.sh [SIZE_MIB] [ROUNDS]   (default 1024 3; needs ~(3+2*ROUNDS)x free disk)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-1024}"
rounds="${2:-3}"
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
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
  print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
last() { awk '{ printf "%.2f", $NF }'; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }

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

b_all=""; r_all=""; w_all=""; coord_rss=0; coord_rss_r=0
for round in $(seq 1 "$rounds"); do
  /usr/bin/time -v "$qv" backup --cluster cl/cluster.toml --key cl/coordinator.key --json \
    artifact.bin > backup.json 2> backup.time
  id=$(sed -n 's/.*"backup_id":"\([0-9a-f]*\)".*/\1/p' backup.json)
  b_all="$b_all $(field seconds backup.json)"
  # Cold: the nodes read their fragments from disk.
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  flags=$(quorum_approve "$id" "request$round")
  # shellcheck disable=SC2086
  /usr/bin/time -v "$qv" restore run --cluster cl/cluster.toml --request "request$round" $flags \
    --dest restored --json > restore.json 2> restore.time
  r_all="$r_all $(field seconds restore.json)"
  cmp artifact.bin restored/artifact.bin || { echo "restored bytes differ" >&2; exit 1; }
  rm -rf restored
  # Warm: fragments in the page cache, as restic's repository is when restic
  # restores right after its backup.
  flags=$(quorum_approve "$id" "warm$round")
  # shellcheck disable=SC2086
  "$qv" restore run --cluster cl/cluster.toml --request "warm$round" $flags --dest restored \
    --json > restore2.json
  w_all="$w_all $(field seconds restore2.json)"
  cmp artifact.bin restored/artifact.bin || { echo "restored bytes differ" >&2; exit 1; }
  rm -rf restored
  coord_rss=$(( $(rss backup.time) > coord_rss ? $(rss backup.time) : coord_rss ))
  coord_rss_r=$(( $(rss restore.time) > coord_rss_r ? $(rss restore.time) : coord_rss_r ))
  echo "  round $round: backup $(echo "$b_all" | last)s, restore cold $(echo "$r_all" | last)s," \
    "warm $(echo "$w_all" | last)s; restored bytes identical"
done
node_rss=""
for f in cl/nodes/*/node.pid; do
  node_rss="$node_rss $(sed -n 's/VmHWM:\s*\([0-9]*\) kB/\1/p' "/proc/$(cat "$f")/status")"
done
"$qv" cluster down --dir cl >/dev/null
trap - EXIT

echo "== restic (Debian's), same artifact, a fresh local repository each round"
export RESTIC_PASSWORD=bench
rb_all=""; rr_all=""
for round in $(seq 1 "$rounds"); do
  export RESTIC_REPOSITORY="$work/restic-repo-$round"
  restic init >/dev/null 2>&1
  t0=$(now); restic backup --quiet artifact.bin >/dev/null; t1=$(now)
  rm -rf restic-out
  restic restore --quiet latest --target restic-out >/dev/null; t2=$(now)
  rb_all="$rb_all $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
  rr_all="$rr_all $(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')"
  rm -rf "$RESTIC_REPOSITORY" restic-out
done

b_secs=$(echo "$b_all" | median); r_secs=$(echo "$r_all" | median); w_secs=$(echo "$w_all" | median)
rb=$(echo "$rb_all" | median); rr=$(echo "$rr_all" | median)
b_rate=$(mbps "$bytes" "$b_secs"); r_rate=$(mbps "$bytes" "$r_secs"); w_rate=$(mbps "$bytes" "$w_secs")
echo
printf '%-34s %8s %8s %9s   (median of %s)\n' "" "MB/s" "limit" "of limit" "$rounds"
printf '%-34s %8s %8.0f %8.1f%%\n' "quorumvault backup (6 nodes)" "$b_rate" "$backup_limit" \
  "$(awk -v a="$b_rate" -v b="$backup_limit" 'BEGIN { print 100 * a / b }')"
printf '%-34s %8s %8.0f %8.1f%%\n' "quorumvault restore, cold caches" "$r_rate" "$restore_limit" \
  "$(awk -v a="$r_rate" -v b="$restore_limit" 'BEGIN { print 100 * a / b }')"
printf '%-34s %8s %8.0f %8.1f%%\n' "quorumvault restore, warm caches" "$w_rate" "$restore_limit" \
  "$(awk -v a="$w_rate" -v b="$restore_limit" 'BEGIN { print 100 * a / b }')"
printf '%-34s %8s   (%.2fs; quorumvault %.2fs: %.2fx faster)\n' "restic backup" "$(mbps "$bytes" "$rb")" \
  "$rb" "$b_secs" "$(awk -v a="$rb" -v b="$b_secs" 'BEGIN { print a / b }')"
printf '%-34s %8s   (%.2fs; quorumvault %.2fs cold, %.2fs warm: %.2fx, %.2fx faster)\n' \
  "restic restore" "$(mbps "$bytes" "$rr")" "$rr" "$r_secs" "$w_secs" \
  "$(awk -v a="$rr" -v b="$r_secs" 'BEGIN { print a / b }')" \
  "$(awk -v a="$rr" -v b="$w_secs" 'BEGIN { print a / b }')"
echo "peak RSS: coordinator backup ${coord_rss} KiB, restore ${coord_rss_r} KiB; nodes (KiB):${node_rss}"
cd .. && rm -rf "$work"
