#!/usr/bin/env bash
# The main job: build qv, then back up a generated sample model into a local
# multi-node layout, lose a node, corrupt another, restore, and compare.
# Everything happens under ./demo (recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
qv="$PWD/build/cli/qv"
rm -rf demo && mkdir demo && cd demo

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "identity of the backup signer (secret key file is 0600)"
signer=$("$qv" keygen --out signer.key)
echo "$signer"

step "a sample model: safetensors shards, tokenizer, config"
"$qv" sample --out sample-model --size 96MiB --shards 4
ls -l sample-model

step "backup: encrypt, Reed-Solomon 4+2 across 6 node folders, key split 3-of-6"
id=$("$qv" backup --local vault --key signer.key --k 4 --m 2 --t 3 sample-model)
echo "backup id: $id"
"$qv" show --local vault --backup "$id"

step "disaster: node-01 is lost entirely, node-04's fragment has a flipped byte"
rm -rf "vault/node-01/backups/$id"
printf '\xff' | dd of="vault/node-04/backups/$id/fragment" bs=1 seek=123457 conv=notrunc status=none

step "restore from what is left, verifying every unit, chunk and file"
"$qv" restore --local vault --backup "$id" --dest restored-model --signer "$signer"

step "compare with the original"
diff -r sample-model restored-model && echo "restored-model is byte-for-byte identical to sample-model"
sha256sum sample-model/*.safetensors | sed 's|sample-model/||' > a.sum
(cd restored-model && sha256sum ./*.safetensors | sed 's|\./||') > b.sum
diff a.sum b.sum && echo "shard SHA-256 digests match (the digests the manifest records)"
