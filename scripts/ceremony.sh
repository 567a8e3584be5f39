# Sourced by the benchmark scripts: the restore ceremony on a local cluster
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
