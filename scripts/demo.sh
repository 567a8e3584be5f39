#!/usr/bin/env bash
# The main job: build qv, create a local 6-node cluster across 3 "sites" on
# 127.0.0.1, start it, back up a generated sample model over authenticated
# channels, lose a whole site (kill -9 of both its nodes), restore from the
# other two sites, compare, and stop the cluster.
# Everything happens under ./demo (recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
qv="$PWD/build/cli/qv"
rm -rf demo && mkdir demo && cd demo
trap '"$qv" cluster down --dir cluster >/dev/null 2>&1 || true' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a local cluster: keys (0600), cluster file, node files"
"$qv" cluster init --dir cluster --base-port "${QV_DEMO_PORT:-7400}"

step "start the six node daemons and wait for their health checks"
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

step "restore from what is left, verifying every unit, chunk and file"
"$qv" restore --cluster cluster/cluster.toml --backup "$id" --dest restored-model

step "compare with the original"
diff -r sample-model restored-model && echo "restored-model is byte-for-byte identical to sample-model"

step "stop the cluster"
"$qv" cluster down --dir cluster
trap - EXIT
echo "node logs: demo/cluster/nodes/*/node.log"
