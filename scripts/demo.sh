#!/usr/bin/env bash
# The main job: build qv, create a local cluster of 6 nodes across 3 "sites"
# and a spare site of 2 on 127.0.0.1, start it, back up a generated sample
# model over authenticated channels, show that an under-approved restore is
# refused by every node, then the whole ceremony: a signed restore request,
# approvals by 3 of the 5 custodians, a site lost (kill -9 of both its
# nodes), the quorum restore from the other two sites, a byte-for-byte
# compare; then healing: a scrub finds the backup at risk, an approved repair
# rebuilds the lost site's fragments and key shares on the spare site, and a
# second site lost still restores byte-for-byte, approved through the
# cluster with one custodian's key in a SoftHSM2 token; finally `qv audit
# verify`.
# Everything happens under ./demo (recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
qv="$PWD/build/cli/qv"
rm -rf demo && mkdir demo && cd demo
trap '"$qv" cluster down --dir cluster >/dev/null 2>&1 || true' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a local cluster: keys (0600), cluster file, node files (3 sites of 2, a spare site of 2)"
"$qv" cluster init --dir cluster --spares 2 --base-port "${QV_DEMO_PORT:-7400}"

step "custodian c5 keeps its key in a hardware token (SoftHSM2 here): made inside, never leaves"
export SOFTHSM2_CONF="$PWD/softhsm2.conf" QV_PKCS11_PIN=1234
mkdir tokens && printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$PWD/tokens" >"$SOFTHSM2_CONF"
softhsm2-util --init-token --free --label c5-token --pin 1234 --so-pin 5678 >/dev/null
c5_key='pkcs11:token=c5-token;object=c5'
"$qv" keygen --pkcs11 "$c5_key" | tee c5.lines
# c5's entry in the cluster file now names the token's key and its channel key.
awk 'FNR == NR { lines = lines $0 "\n"; next }
     prev == "id = \"c5\"" && /^public_key/ { printf "%s", lines; prev = ""; next }
     { print; prev = $0 }' c5.lines cluster/cluster.toml >cluster/cluster.toml.new
mv cluster/cluster.toml.new cluster/cluster.toml
grep -A3 'id = "c5"' cluster/cluster.toml

step "start the eight node daemons and wait for their health checks"
"$qv" cluster up --dir cluster
"$qv" status --cluster cluster/cluster.toml

step "a sample model: safetensors shards, tokenizer, config"
"$qv" sample --out sample-model --size 96MiB --shards 4

step "backup: encrypt, Reed-Solomon 4+2 across the nodes, key split 3-of-6"
id=$("$qv" backup --cluster cluster/cluster.toml --key cluster/coordinator.key sample-model)
echo "backup id: $id"
"$qv" show --cluster cluster/cluster.toml --backup "$id"

step "disaster: site-a is lost (kill -9 of node-00 and node-01)"
kill -9 "$(cat cluster/nodes/node-00/node.pid)" "$(cat cluster/nodes/node-01/node.pid)"
"$qv" status --cluster cluster/cluster.toml || true

step "the operator asks for a restore (signed request, one-time reply key)"
"$qv" restore request --cluster cluster/cluster.toml --backup "$id" \
  --purpose "DR drill: site-a lost" --destination "site-b:/models" --ttl 1h --out request

step "an under-approved attempt (2 of the 3 needed): every node refuses and logs it"
"$qv" approve --cluster cluster/cluster.toml --key cluster/custodians/c1.key request --out c1.approval --yes
"$qv" approve --cluster cluster/cluster.toml --key cluster/custodians/c2.key request --out c2.approval --yes
if "$qv" restore run --cluster cluster/cluster.toml --request request \
     --approval c1.approval --approval c2.approval --dest refused-model; then
  echo "UNEXPECTED: restore with 2 approvals succeeded"; exit 1
fi

step "a third custodian approves; the remaining nodes release sealed shares"
"$qv" approve --cluster cluster/cluster.toml --key cluster/custodians/c4.key request --out c4.approval --yes
"$qv" restore run --cluster cluster/cluster.toml --request request \
  --approval c1.approval --approval c2.approval --approval c4.approval --dest restored-model

step "compare with the original"
diff -r sample-model restored-model && echo "restored-model is byte-for-byte identical to sample-model"

step "heal: a scrub proves what each node still holds, and finds the backup at risk"
"$qv" scrub --cluster cluster/cluster.toml || true

step "a repair (planned from the scrub) is requested and approved by 3 custodians"
"$qv" repair request --cluster cluster/cluster.toml --backup "$id" \
  --purpose "site-a lost: regain redundancy" --out repair
for c in c1 c3 c4; do
  "$qv" approve --cluster cluster/cluster.toml --key "cluster/custodians/$c.key" repair \
    --out "repair.$c" --yes
done

step "the repair: fragments rebuilt from ciphertext, key shares by share recovery, on site-spare"
"$qv" repair run --cluster cluster/cluster.toml --request repair \
  --approval repair.c1 --approval repair.c3 --approval repair.c4
"$qv" scrub --cluster cluster/cluster.toml --sample 1
"$qv" show --cluster cluster/cluster.toml --backup "$id" | tail -n 10

step "a second disaster: site-b is lost too (kill -9 of node-02 and node-03); restore again"
kill -9 "$(cat cluster/nodes/node-02/node.pid)" "$(cat cluster/nodes/node-03/node.pid)"
"$qv" restore request --cluster cluster/cluster.toml --backup "$id" \
  --purpose "DR drill: site-b lost after the repair" --ttl 1h --out request2 --submit
step "this time through the cluster: custodians list what waits and approve by id, c5 from its token"
rid=$("$qv" pending --cluster cluster/cluster.toml --key "$c5_key" --json | grep -o '"request_id":"[0-9a-f]*"' | cut -d'"' -f4)
"$qv" pending --cluster cluster/cluster.toml --key "$c5_key"
for key in cluster/custodians/c2.key cluster/custodians/c3.key "$c5_key"; do
  "$qv" approve --cluster cluster/cluster.toml --key "$key" --request "${rid:0:16}" --yes
done
"$qv" restore run --cluster cluster/cluster.toml --request request2 --dest restored-again
diff -r sample-model restored-again && echo "restored-again is byte-for-byte identical to sample-model"

step "the audit trail: who asked, who approved, which nodes released"
"$qv" audit log --cluster cluster/cluster.toml --backup "$id" | grep -E "release|refusal" | cut -c1-150

step "stop the cluster (nodes sign a final checkpoint), restart the lost site, verify the audit logs"
"$qv" cluster down --dir cluster
"$qv" cluster up --dir cluster >/dev/null
sleep 1
"$qv" audit verify --cluster cluster/cluster.toml
"$qv" cluster down --dir cluster
trap - EXIT

step "rehearse: every disaster and insider-abuse drill on the deterministic simulator"
"$qv" drill run --all --report drills.md 2>/dev/null | grep -E "^[a-z0-9-]+ +(disaster|abuse)|drills passed"
echo "node logs: demo/cluster/nodes/*/node.log; drill report for auditors: demo/drills.md"
