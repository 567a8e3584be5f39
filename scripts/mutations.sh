# The curated mutations of scripts/mutate.sh (sourced by it). Each line:
#   mutation ID GUARANTEE FILE FROM TO TARGETS TESTS
# GUARANTEE is the short name of the README threat-model bullet the check
# serves; the README names each ID under its guarantee. FROM must occur once
# in FILE. TESTS is a ctest regular expression: the tests that should kill it
# (keep it narrow: the whole list must run within CI's budget).
# A new guarantee adds its mutations here and its IDs to the README.
# shellcheck shell=bash

# Scale tests (a million stripes, a manifest in pages) take most of a suite's
# time and guard sizes, not these checks: never run for a mutation.
exclude='MoreThanAMillionStripes|AManifestLargerThanAMessage'

# -- quorum/verify.cc: the certificate every node checks ----------------------
V=quorum/verify.cc
VT='^(VerifyTest|EnrollmentTest)\.'
mutation verify-quorum-count lone-party $V \
  'if (v.approvers.size() < policy.quorum) {' 'if (false) {' quorum_test "$VT"
mutation verify-custodian-once lone-party $V \
  'if (approved.insert(a.custodian_key).second) v.approvers.push_back(id);' \
  'approved.insert(a.custodian_key); v.approvers.push_back(id);' quorum_test "$VT"
mutation verify-own-approval lone-party $V \
  'if (a.custodian_key == q.requester_key || a.custodian_id == q.requester_id) {' \
  'if (false) {' quorum_test "$VT"
mutation verify-custodian-key m-minus-one $V \
  'if (c == nullptr || c->id != a.custodian_id) return "unknown custodian";' \
  'if (c == nullptr) return "unknown custodian";' quorum_test "$VT"
mutation verify-approval-signature m-minus-one $V \
  'if (!a.VerifySignature().ok()) return "bad signature";' '' quorum_test "$VT"
mutation verify-approval-request m-minus-one $V \
  'if (a.request_id != r.id()) return "for a different request";' '' quorum_test "$VT"
mutation verify-bad-approval-refuses m-minus-one $V \
  'if (!bad.empty()) return Refuse(bad);' '' quorum_test "$VT"
mutation verify-approval-lifetime lone-party $V \
  'if (a.signed_unix + in.max_skew < q.created_unix ||' 'if (false &&' quorum_test "$VT"
mutation verify-expired lone-party $V \
  'if (in.now > q.expires_unix + in.max_skew) {' 'if (false) {' quorum_test "$VT"
mutation verify-other-backup lone-party $V \
  'if (q.backup_id != in.backup_id || m.backup_id != in.backup_id) {' 'if (false) {' \
  quorum_test "$VT"
mutation verify-manifest-hash lone-party $V \
  'if (q.manifest_hash != in.manifest->Hash()) {' 'if (false) {' quorum_test "$VT"
mutation verify-requester-listed lone-party $V \
  'if (requester->id != q.requester_id) {' 'if (false) {' quorum_test "$VT"
mutation verify-veto denial $V 'if (!v.deniers.empty()) {' 'if (false) {' quorum_test "$VT"
mutation verify-known-deniers denial $V \
  'if (in.known_deniers != nullptr) {' 'if (false) {' quorum_test "$VT"
mutation verify-backup-name screen $V \
  'if (q.backup_name != Printable(m.artifact_name)) {' 'if (false) {' quorum_test "$VT"
mutation verify-lifetime-limit crafted-messages $V \
  'if (q.expires_unix - q.created_unix > int64_t{max_request_seconds}) {' 'if (false) {' \
  quorum_test "$VT"
mutation verify-future-dated clock $V \
  'if (q.created_unix > in.now + in.max_skew) {' 'if (false) {' quorum_test "$VT"
mutation request-plausible-time crafted-messages quorum/request.cc \
  'if (t < kMinPlausibleUnix || t > kMaxPlausibleUnix) {' 'if (false) {' quorum_test \
  '^(RequestTest|VerifyTest)\.'
mutation enrollment-membership enrollment quorum/enrollment.cc \
  'if (q.manifest_hash != MembershipDigest(cluster)) {' 'if (false) {' quorum_test \
  '^EnrollmentTest\.'

# -- node/: what a node checks before it releases or stores -------------------
S=node/node_service.cc
NT='^InProcessClusterTest\.'
mutation release-skips-quorum coordinator-key $S \
  'if (!verdict.ok() && !opt_.test_skip_quorum_check) {' 'if (false) {' node_test "$NT"
mutation release-seal-to-other-key coordinator-key $S \
  'SealToKey(q.reply_key, share)' 'SealToKey(x25519_public_, share)' node_test "$NT"
mutation release-replay lone-party $S \
  'Status spent = store_->SpendRequest(rid, r.backup_id, now);' 'Status spent = Status::Ok();' \
  node_test "$NT"
mutation release-retry-proof burn-certificate $S 'if (!proof.ok()) {' 'if (false) {' \
  node_test "$NT"
mutation release-retry-limit burn-certificate node/node_store.cc \
  '"count = count + 1 WHERE count < ? RETURNING count"' '"count = count + 1 RETURNING count"' \
  node_test "$NT"
mutation release-requester-only requester-only $S \
  'if (s.peer_.role != PeerRole::kRequester || s.peer_.key != q.requester_key) {' \
  'if (false) {' node_test "$NT"
mutation release-clock clock $S \
  'if (const std::string clock = ClockProblem(); !clock.empty()) {' \
  'if (const std::string clock = ClockProblem(); false) {' node_test "$NT"
mutation release-audit-first release-trace $S \
  'if (Status st = AuditDurably(events, /*checkpoint=*/true); !st.ok()) {' \
  'if (Status st = AuditDurably(events, /*checkpoint=*/true); false) {' \
  "node_test qv ceremony_attack_test" "$NT|^CeremonyAttackTest\.ANodeThatCannotWriteItsAuditEntry"
mutation approval-audit-result release-trace $S '{"result", c.result},' '{"result", "valid"},' \
  "node_test qv ceremony_attack_test" \
  '^CeremonyAttackTest\.(EachApprovalIsAuditedWithItsVerificationResult|TheAuditLogIsOneLine)'
mutation fetch-units-after-lifetime coordinator-key $S \
  'if (it == s.released_.end() || opt_.clock->NowUnix() > it->second) {' \
  'if (it == s.released_.end()) {' node_test "$NT"
mutation upload-share-feldman corruption node/node_store.cc \
  'QV_RETURN_IF_ERROR(VerifyShare(*share, m.commitments));' \
  '(void)VerifyShare(*share, m.commitments);' node_test "$NT"
mutation upload-signed-root corruption node/node_store.cc \
  'if (MerkleRoot(leaves_) != m.fragment_roots[fragment_]) {' 'if (false) {' node_test "$NT"
mutation share-seal-manifest-hash data-folders node/share_seal.cc \
  'HexEncode(manifest_hash);' 'std::string();' node_test "$NT"
mutation backup-id-one-manifest data-folders $S \
  'if (!std::equal(manifest_hash.begin(), manifest_hash.end(), resp->payload.begin())) {' \
  'if (false) {' node_test "$NT"
mutation master-key-check master-key node/node_store.cc \
  'sodium_memcmp(p, kcv.data(), kcv.size()) != 0) {' \
  'sodium_memcmp(p, kcv.data(), kcv.size()) != 0 && false) {' \
  node_test "$NT"
mutation payload-limit crafted-messages node/messages.cc \
  'if (*payload_len > kMaxPayload) return InvalidArgument("payload over the limit");' '' \
  node_test '^MessagesTest\.'
mutation upload-free-space crafted-messages node/node_store.cc 'if (need > usable) {' \
  'if (false) {' node_test "$NT"
mutation submit-own-request ceremony-flood node/node_ceremony.cc \
  'if (q.requester_key != s.peer().key) {' 'if (false) {' \
  "node_test qv ceremony_attack_test" "$NT|^CeremonyAttackTest\.Pending"
mutation vote-own-approval ceremony-flood node/node_ceremony.cc \
  'if (a.custodian_key != s.peer().key) {' 'if (false) {' \
  "node_test qv ceremony_attack_test" "$NT|^CeremonyAttackTest\.Pending"
mutation post-rate-limit ceremony-flood node/node_ceremony.cc \
  'if (times.size() >= opt_.max_posts_per_minute) {' 'if (false) {' \
  "node_test qv ceremony_attack_test" "$NT|^CeremonyAttackTest\.Pending"
mutation pending-cap ceremony-flood node/node_store_pending.cc \
  'if (!known && kept >= static_cast<int64_t>(kMaxPendingRequests)) {' 'if (false) {' \
  "node_test qv ceremony_attack_test" "$NT|^CeremonyAttackTest\.Pending"
mutation token-channel-key-signs token-keys $S \
  'pin(c.channel(), {PeerRole::kCustodian, "custodian:" + c.id, c.public_key});' \
  'pin(c.channel(), {PeerRole::kCustodian, "custodian:" + c.id, c.channel()});' \
  "qv token_ceremony_test" '^TokenCeremonyTest\.'
mutation handshake-refusals-counted handshake-flood $S \
  $'    } else {\n      ++it->second.more;\n    }' $'    }\n    first = true;' \
  "qv ceremony_attack_test" '^CeremonyAttackTest\.AFloodOfUnpinnedHandshakes'
mutation server-drops-unpinned impostor node/server.cc \
  'if (peer_.role == PeerRole::kUnknown) {' 'if (false) {' "qv cluster_test" \
  '^ClusterTest\.AnImpostorKey'
mutation client-checks-node-key impostor node/node_client.cc \
  'if (*c->channel_->remote_static() != expected) {' 'if (false) {' "qv cluster_test" \
  '^ClusterTest\.AnImpostorKey'
mutation unauthenticated-cap connection-flood node/server.cc \
  'if (s_->unauth_total >= s_->opt.max_unauthenticated ||' 'if (false &&' "qv flood_test" \
  '^FloodTest\.HeldUnauthenticated'
mutation repair-quorum repair node/node_repair.cc \
  'if (!verdict.ok() && !opt_.test_skip_quorum_check) return refuse(rid, verdict.status());' '' \
  sim_test '^RepairTest\.(NodesRefuseEvery|ARepairBelowQuorum)'
mutation repair-fragment-off-plan repair $S 'if (mv == nullptr || mv->node_id != node_id_) {' \
  'if (false) {' sim_test '^RepairTest\.(NodesRefuseEvery|APlanThatGives)'
mutation repair-manifest-off-plan repair node/node_repair.cc \
  'if (!same || (next.Hash() != approved.Hash() && !CheckSuccessor(approved, next).ok())) {' \
  'if (false) {' sim_test '^RepairTest\.(NodesRefuseEvery|APlanThatGives)'

# -- audit: chains, checkpoints, witnesses ------------------------------------
A=node/audit_record.cc
AT='^(AuditRecordTest|AuditLogTest|WitnessTest|AuditCheckTest)\.|^ClusterTest\.(AuditVerify|HistoryRewritten)'
AB="node_test coordinator_test qv cluster_test"
mutation audit-prev-link audit-history $A 'if (e.prev != prev) {' 'if (false) {' "$AB" "$AT"
mutation audit-entry-hash audit-history $A 'if (e.ComputeHash() != e.hash) {' 'if (false) {' \
  "$AB" "$AT"
mutation audit-checkpoint-head audit-history $A \
  '} else if (entries[c.seq - 1].hash != c.head) {' '} else if (false) {' "$AB" "$AT"
mutation audit-checkpoint-signature audit-history $A \
  'if (Status v = c.Verify(node_key); !v.ok()) {' 'if (Status v = Status::Ok(); !v.ok()) {' \
  "$AB" "$AT"
mutation witness-links-entries audit-history node/witness.cc \
  'if (e.seq != p.seq + 1 || e.prev != p.head || e.ComputeHash() != e.hash) {' \
  'if (e.seq != p.seq + 1 || e.ComputeHash() != e.hash) {' "$AB" "$AT"
mutation witness-head-matches audit-history node/witness.cc 'if (p.head != latest.head) {' \
  'if (false) {' "$AB" "$AT"

# -- crypto: shares, chunks, channels -----------------------------------------
VS=crypto/vss.cc
mutation vss-share-commitments corruption $VS \
  'if (sodium_memcmp(lhs.data(), acc.data(), kPointSize) != 0) {' 'if (false) {' crypto_test \
  '^(VssTest|ShareRepairTest|ShareProofTest)\.'
mutation vss-threshold t-minus-one $VS 'if (good.size() < t) {' 'if (false) {' crypto_test \
  '^VssTest\.'
mutation vss-identity-commitments data-folders $VS 'if (IsZero(points[j].data(), kPointSize)) {' \
  'if (false) {' crypto_test '^VssTest\.'
mutation chunk-index-bound reorder crypto/aead.cc \
  'PutU64BE(ad + kAdLabelSize + kStreamIdSize, index);' '' crypto_test 'ChunkCipherTest\.'
mutation chunk-final-bound reorder crypto/aead.cc 'ad[kAdSize - 1] = final ? 1 : 0;' \
  'ad[kAdSize - 1] = 0;' crypto_test 'ChunkCipherTest\.'
mutation text-bidi-overrides screen base/text.cc '(cp >= 0x202A && cp <= 0x202E) ||' '' \
  base_test 'DisplayTextTest\.'
mutation text-escapes-escape screen base/text.cc $'} else if (cp == 0x1B) {\n      out += "\\\\e";' \
  $'} else if (false) {\n      out += "\\\\e";' base_test 'DisplayTextTest\.'

# -- the coordinator and qv ----------------------------------------------------
mutation restore-file-digest corruption coordinator/pipeline.cc \
  'if (sha_.Finish() != f.sha256) {' 'if (sha_.Finish() != f.sha256 && false) {' \
  coordinator_test '^(PipelineTest|LocalStoreTest)\.'
mutation restore-unit-leaf corruption coordinator/pipeline.cc \
  'if (v->bytes.size() != U || MerkleLeafHash(v->bytes) != leaves[f][i]) {' \
  'if (v->bytes.size() != U) {' coordinator_test '^(PipelineTest|LocalStoreTest)\.'
mutation restore-no-replace burn-certificate coordinator/artifact.cc \
  'RENAME_NOREPLACE) != 0) {' '0) != 0) {' coordinator_test '^(ArtifactTest|PipelineTest)\.'
mutation wrap-erases-plain-key disk-copy cli/token_cmd.cc \
  'if (Status st = RemoveSecretFile(nc->master_key_file); !st.ok()) {' \
  'if (Status st = Status::Ok(); !st.ok()) {' "qv cluster_test crash_test" \
  '^ClusterTest\.ANodeWhoseMasterKeyIsInAToken|^CrashTest\.AWrap'

# -- configs and the simulator --------------------------------------------------
C=configs/cluster_config.cc
mutation policy-quorum-zero policy $C 'if (!custodians.empty() && quorum == 0) {' 'if (false) {' \
  configs_test '^ClusterConfigTest\.'
mutation policy-quorum-above policy $C \
  'if (!custodians.empty() && quorum > custodians.size()) {' 'if (false) {' configs_test \
  '^ClusterConfigTest\.'
mutation policy-one-key-one-party policy $C 'if (!keys.insert(p.public_key).second) {' \
  'if (!keys.insert(p.public_key).second && false) {' configs_test '^ClusterConfigTest\.'
mutation drills-skip-quorum drills sim/drill.cc \
  'so.test_skip_quorum_check = options.test_skip_quorum_check;' \
  'so.test_skip_quorum_check = true;' sim_test 'ShippedDrillTest\.Passes/(colluding_custodians_below_quorum|rogue_admin_one_approval|forged_approval)'
