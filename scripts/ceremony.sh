# Sourced by the benchmark scripts: a local cluster to measure on, and the restore ceremony on it
# made by `qv cluster init --dir cl`. Needs $qv.
#
# quorum_approve ID REQ [CUSTODIAN...]: the operator's signed request for
# backup ID written to REQ (and REQ.key), approved by the named custodians
# (default c1 c2 c3); prints the --approval flags for `qv restore run`.
quorum_approve() {
  local id="$1" req="$2"; shift 2
  [ $# -gt 0 ] || set -- c1 c2 c3
  "$qv" restore request --cluster cl/cluster.toml --backup "$id" --purpose benchmark \
    --destination bench --out "$req" >/dev/null
  local flags="" c
  for c in "$@"; do
    "$qv" approve --yes --cluster cl/cluster.toml --key "cl/custodians/$c.key" "$req" --out "$req.$c" >/dev/null 2>&1
    flags="$flags --approval $req.$c"
  done
  echo "$flags"
}

# bench_cluster NAME DEFAULT_PORT: a fresh work folder ($QV_BENCH_DIR or
# ./NAME), entered, with a local cluster initialized and up in cl/ (base
# port $QV_BENCH_PORT or DEFAULT_PORT), taken down on exit; sets $work.
bench_cluster() {
  work="${QV_BENCH_DIR:-$PWD/$1}"
  rm -rf "$work" && mkdir -p "$work" && cd "$work"
  trap '"$qv" cluster down --dir cl >/dev/null 2>&1 || true' EXIT
  "$qv" cluster init --dir cl --base-port "${QV_BENCH_PORT:-$2}" >/dev/null
  "$qv" cluster up --dir cl >/dev/null
}

# ms_since T0: milliseconds since T0 (from date +%s%N), one decimal.
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000 )) | awk '{ printf "%.1f\n", $1 / 1000 }'; }

# stats FILE: median p90 min max of the numbers in FILE (one per line).
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = v[int(0.9 * NR + 0.999)]
    printf "median %7.1f ms   p90 %7.1f ms   min %7.1f ms   max %7.1f ms   (%d runs)", m, p, v[1], v[NR], NR }'
}
