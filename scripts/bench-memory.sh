#!/usr/bin/env bash
# Shows that peak memory does not grow with artifact size: backs up and
# restores artifacts of each size (default 1 and 8 GiB) through the local
# layout and prints the peak RSS of each run (/usr/bin/time -v).
# Needs about 3.5x the largest size in free disk under the work folder.
# Usage: scripts/bench-memory.sh [SIZE_GIB ...]   (work folder: $QV_BENCH_DIR or ./bench-memory)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq time >/dev/null; else sudo apt-get install -y -qq time >/dev/null; fi
fi
qv="$PWD/build/cli/qv"
work="${QV_BENCH_DIR:-$PWD/bench-memory}"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 8)
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$qv" keygen --out signer.key >/dev/null

peak() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }

printf '%-10s %-8s %12s %10s %s\n' size op "peak RSS" seconds "MB/s"
for g in "${sizes[@]}"; do
  # Random data (not a sparse file) so the cipher and hashes see real bytes.
  head -c "$((g * 1024 * 1024 * 1024))" /dev/urandom > artifact.bin
  /usr/bin/time -v "$qv" backup --local vault --key signer.key --json artifact.bin >backup.json 2>time.txt
  id=$(sed -n 's/.*"backup_id":"\([0-9a-f]*\)".*/\1/p' backup.json)
  secs=$(sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' backup.json)
  rate=$(sed -n 's/.*"mb_per_s":\([0-9.e+-]*\).*/\1/p' backup.json)
  printf '%-10s %-8s %9s KiB %10s %s\n' "${g} GiB" backup "$(peak time.txt)" "$secs" "$rate"
  rm -f artifact.bin
  /usr/bin/time -v "$qv" restore --local vault --backup "$id" --dest restored --json >restore.json 2>time.txt
  secs=$(sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' restore.json)
  rate=$(sed -n 's/.*"mb_per_s":\([0-9.e+-]*\).*/\1/p' restore.json)
  printf '%-10s %-8s %9s KiB %10s %s\n' "${g} GiB" restore "$(peak time.txt)" "$secs" "$rate"
  rm -rf vault restored
done
cd .. && rm -rf "$work"
