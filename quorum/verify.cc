#include "quorum/verify.h"

#include <algorithm>
#include <set>

#include "base/text.h"

namespace qv {

namespace {

Status Refuse(const std::string& why) { return Status(StatusCode::kPermissionDenied, why); }

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Why approval `a` does not count for request `r` under `policy`, or "valid".
std::string CheckApproval(const Approval& a, const SignedRequest& r, const Policy& policy,
                          const VerifyInput& in) {
  const QuorumRequest& q = r.request();
  const Custodian* c = policy.FindByKey(a.custodian_key);
  if (c == nullptr || c->id != a.custodian_id) return "unknown custodian";
  if (a.custodian_key == q.requester_key || a.custodian_id == q.requester_id) {
    return "requester's own approval";
  }
  if (!a.VerifySignature().ok()) return "bad signature";
  if (a.request_id != r.id()) return "for a different request";
  if (a.signed_unix + in.max_skew < q.created_unix ||
      a.signed_unix > std::min(in.now, q.expires_unix) + in.max_skew) {
    return "signed outside the request's lifetime";
  }
  return "valid";
}

// The refusal text for one bad approval, as a person reads it.
std::string Describe(const ApprovalCheck& c) {
  const std::string id = Printable(c.custodian);
  if (c.result == "unknown custodian") return "unknown custodian " + id;
  if (c.result == "requester's own approval")
    return "requester approved own request (custodian " + id + ")";
  if (c.result == "bad signature") return "bad signature from " + id;
  if (c.result == "for a different request")
    return "approval from " + id + " is for a different request";
  return "approval from " + id + " is not within the request's lifetime";
}

}  // namespace

Status CheckRequester(const QuorumRequest& q, const std::vector<Principal>& requesters) {
  const Principal* requester = nullptr;
  for (const auto& r : requesters) {
    if (r.public_key == q.requester_key) requester = &r;
  }
  if (requester == nullptr) {
    return Refuse("requester " + Printable(q.requester_id) + " is not listed in the cluster file");
  }
  if (requester->id != q.requester_id) {
    return Refuse("request names requester " + Printable(q.requester_id) + " but is signed by " +
                  requester->id);
  }

  return Status::Ok();
}

Status CheckTimes(const QuorumRequest& q, uint32_t max_request_seconds, const VerifyInput& in) {
  // Times: bounded skew both ways, and no request may outlive the policy.
  if (q.created_unix > in.now + in.max_skew) {
    return Refuse("request is dated " + std::to_string(q.created_unix - in.now) +
                  " s in the future");
  }
  if (in.now > q.expires_unix + in.max_skew) {
    return Refuse("request expired " + std::to_string(in.now - q.expires_unix) + " s ago");
  }
  if (q.expires_unix - q.created_unix > int64_t{max_request_seconds}) {
    return Refuse("request lifetime " + std::to_string(q.expires_unix - q.created_unix) +
                  " s exceeds the policy's " + std::to_string(max_request_seconds) + " s");
  }
  return Status::Ok();
}

Status CheckRequest(const SignedRequest& request, const VerifyInput& in) {
  if (in.manifest == nullptr || in.requesters == nullptr) return Internal("incomplete input");
  const QuorumRequest& q = request.request();
  const Manifest& m = in.manifest->manifest();
  const Policy& policy = m.policy;
  if (!policy.custodial()) return Refuse("backup has no custodian policy; nothing is released");
  if (!policy.NeedsQuorum(in.operation)) {
    return Refuse("policy does not cover operation " + std::string(in.operation));
  }
  if (q.operation != in.operation) {
    return Refuse("request is for " + Printable(q.operation) + ", not " +
                  std::string(in.operation));
  }
  if (q.backup_id != in.backup_id || m.backup_id != in.backup_id) {
    return Refuse("certificate is for backup " + BackupIdToText(q.backup_id) + ", not " +
                  BackupIdToText(in.backup_id));
  }
  if (q.manifest_hash != in.manifest->Hash()) {
    return Refuse("request names a different manifest of backup " + BackupIdToText(q.backup_id));
  }
  // What the custodians read must be what the signed manifest says.
  // (A name may hold any bytes a folder name can; requests carry its
  // escaped, printable form, base/text.h's Printable, which never changes.)
  if (q.backup_name != Printable(m.artifact_name)) {
    return Refuse("request names backup \"" + Printable(q.backup_name) +
                  "\" but its signed manifest names \"" + Printable(m.artifact_name) + "\"");
  }
  QV_RETURN_IF_ERROR(CheckRequester(q, *in.requesters));
  return CheckTimes(q, policy.max_request_seconds, in);
}

Result<Verdict> VerifyCertificate(const Certificate& cert, const VerifyInput& in,
                                  std::vector<ApprovalCheck>* checks_out) {
  if (in.manifest == nullptr || in.requesters == nullptr) return Internal("incomplete input");
  return VerifyApprovals(cert, in.manifest->manifest().policy, in, CheckRequest(cert.request, in),
                         checks_out);
}

Result<Verdict> VerifyApprovals(const Certificate& cert, const Policy& policy,
                                const VerifyInput& in, const Status& request_checked,
                                std::vector<ApprovalCheck>* checks_out) {
  // Every approval is judged first, so a caller can log each one with its
  // result even when the request itself is refused.
  std::vector<ApprovalCheck> checks;
  for (const Approval& a : cert.approvals) {
    checks.push_back({a.custodian_id, a.approve, CheckApproval(a, cert.request, policy, in),
                      a.signed_unix, a.note});
  }
  if (checks_out != nullptr) *checks_out = checks;
  QV_RETURN_IF_ERROR(request_checked);

  // Any bad approval refuses the whole certificate: it is either a mistake
  // to fix or an attempt to forge one, and both deserve a reason. Every bad
  // one is named.
  std::string bad;
  for (const auto& c : checks) {
    if (!c.valid()) bad += (bad.empty() ? "" : "; ") + Describe(c);
  }
  if (!bad.empty()) return Refuse(bad);
  std::set<PublicKey> approved, denied;
  Verdict v;
  v.request_id = cert.request.id();
  for (const Approval& a : cert.approvals) {
    const std::string& id = a.custodian_id;  // valid: a custodian of the policy
    if (a.approve) {
      if (approved.insert(a.custodian_key).second) v.approvers.push_back(id);
    } else if (denied.insert(a.custodian_key).second) {
      v.deniers.push_back(id);
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
  if (in.known_deniers != nullptr) {
    for (const auto& id : *in.known_deniers) {
      if (std::find(v.deniers.begin(), v.deniers.end(), id) == v.deniers.end()) {
        v.deniers.push_back(id + " (earlier)");
      }
    }
  }
  // A denial is a veto: one custodian who says no stops the request,
  // however many others approve (separation of duties, as a two-person
  // rule reads it). A denial left out of a certificate still counts once a
  // node has seen it.
  if (!v.deniers.empty()) {
    return Refuse("denied by " + Join(v.deniers) +
                  (v.approvers.empty() ? "" : " (approved by " + Join(v.approvers) + ")"));
  }
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
