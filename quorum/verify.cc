#include "quorum/verify.h"

#include <algorithm>
#include <set>

namespace qv {

namespace {

Status Refuse(const std::string& why) { return Status(StatusCode::kPermissionDenied, why); }

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<Verdict> VerifyCertificate(const Certificate& cert, const VerifyInput& in) {
  if (in.manifest == nullptr || in.requesters == nullptr) return Internal("incomplete input");
  const QuorumRequest& q = cert.request.request();
  const Manifest& m = in.manifest->manifest();
  const Policy& policy = m.policy;
  if (!policy.custodial()) return Refuse("backup has no custodian policy; nothing is released");
  if (!policy.NeedsQuorum(in.operation)) {
    return Refuse("policy does not cover operation " + std::string(in.operation));
  }
  if (q.operation != in.operation) {
    return Refuse("request is for " + q.operation + ", not " + std::string(in.operation));
  }
  if (q.backup_id != in.backup_id || m.backup_id != in.backup_id) {
    return Refuse("certificate is for backup " + BackupIdToText(q.backup_id) + ", not " +
                  BackupIdToText(in.backup_id));
  }
  if (q.manifest_hash != in.manifest->Hash()) {
    return Refuse("request names a different manifest of backup " + BackupIdToText(q.backup_id));
  }
  const Principal* requester = nullptr;
  for (const auto& r : *in.requesters) {
    if (r.public_key == q.requester_key) requester = &r;
  }
  if (requester == nullptr) {
    return Refuse("requester " + q.requester_id + " is not listed in the cluster file");
  }
  if (requester->id != q.requester_id) {
    return Refuse("request names requester " + q.requester_id + " but is signed by " +
                  requester->id);
  }

  // Times: bounded skew both ways, and no request may outlive the policy.
  if (q.created_unix > in.now + in.max_skew) {
    return Refuse("request is dated " + std::to_string(q.created_unix - in.now) +
                  " s in the future");
  }
  if (in.now > q.expires_unix + in.max_skew) {
    return Refuse("request expired " + std::to_string(in.now - q.expires_unix) + " s ago");
  }
  if (q.expires_unix - q.created_unix > int64_t{policy.max_request_seconds}) {
    return Refuse("request lifetime " + std::to_string(q.expires_unix - q.created_unix) +
                  " s exceeds the policy's " + std::to_string(policy.max_request_seconds) + " s");
  }

  // Any malformed approval refuses the whole certificate: it is either a
  // mistake to fix or an attempt to forge one, and both deserve a reason.
  std::set<PublicKey> approved, denied;
  Verdict v;
  v.request_id = cert.request.id();
  for (const Approval& a : cert.approvals) {
    const Custodian* c = policy.FindByKey(a.custodian_key);
    if (c == nullptr || c->id != a.custodian_id) {
      return Refuse("unknown custodian " + a.custodian_id);
    }
    if (a.custodian_key == q.requester_key || a.custodian_id == q.requester_id) {
      return Refuse("requester approved own request (custodian " + c->id + ")");
    }
    if (!a.VerifySignature().ok()) return Refuse("bad signature from " + c->id);
    if (a.request_id != cert.request.id()) {
      return Refuse("approval from " + c->id + " is for a different request");
    }
    if (a.signed_unix + in.max_skew < q.created_unix ||
        a.signed_unix > std::min(in.now, q.expires_unix) + in.max_skew) {
      return Refuse("approval from " + c->id + " is not within the request's lifetime");
    }
    if (a.approve) {
      if (approved.insert(a.custodian_key).second) v.approvers.push_back(c->id);
    } else if (denied.insert(a.custodian_key).second) {
      v.deniers.push_back(c->id);
    }
  }
  // A custodian that both approved and denied is counted as denying.
  std::vector<std::string> counted;
  for (const auto& id : v.approvers) {
    if (std::find(v.deniers.begin(), v.deniers.end(), id) == v.deniers.end()) {
      counted.push_back(id);
    }
  }
  v.approvers = counted;
  if (v.approvers.size() < policy.quorum) {
    std::string why = "below quorum: " + std::to_string(v.approvers.size()) + " of " +
                      std::to_string(policy.quorum);
    if (!v.approvers.empty()) why += " (approved by " + Join(v.approvers) + ")";
    if (!v.deniers.empty()) why += " (denied by " + Join(v.deniers) + ")";
    return Refuse(why);
  }
  return v;
}

}  // namespace qv
