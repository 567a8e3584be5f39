// NodeService: enrolling a node key (quorum/enrollment.h, issue 15).
//
// Order, so that a crash or a full disk never leaves a key pinned without
// evidence: the certificate is verified against the cluster as this node
// knows it now, at this node's clock; the approvals and the enrollment are
// audited durably; the certificate is recorded (NodeStore::AddEnrollment);
// only then is the key pinned. A crash after the audit but before the
// record leaves the node as it was, and the same certificate presented
// again (before it expires) enrolls it. A certificate already applied is
// answered "already enrolled", so retries are safe.
#include "base/text.h"
#include "node/node_service.h"
#include "quorum/enrollment.h"

namespace qv {

Result<Response> NodeService::Enroll(Session& s, const Request& r) {
  if (r.payload.size() > kMaxEnrollmentBytes) {
    return InvalidArgument("an enrollment certificate is at most " +
                           std::to_string(kMaxEnrollmentBytes) + " bytes");
  }
  QV_ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(r.payload));
  const std::string rid = RequestIdToText(cert.request.id());
  std::lock_guard<std::mutex> lock(enroll_mu_);
  const std::shared_ptr<const ClusterConfig> current = cluster();
  for (const auto& e : current->enrollments) {
    auto applied = Certificate::Parse(e);
    if (applied.ok() && applied->request.id() == cert.request.id()) {
      Response resp;
      resp.message = "already enrolled";
      return resp;
    }
  }
  QV_ASSIGN_OR_RETURN(std::vector<std::string> earlier, store_->Denials(rid));
  VerifyInput in;
  in.operation = kOpEnroll;
  in.now = opt_.clock->NowUnix();
  in.max_skew = opt_.max_skew;
  in.known_deniers = &earlier;
  std::vector<ApprovalCheck> checks;
  auto verdict = VerifyEnrollment(cert, *current, in, &checks);
  std::vector<AuditEvent> events;
  AppendApprovalEvents(checks, s.peer().name, "", rid, &events);
  if (!verdict.ok()) {
    // Handle() audits the refusal itself; the approvals go first.
    (void)RememberDenials(rid, checks);
    if (Status st = AuditDurably(events); !st.ok()) {
      return PermissionDenied(verdict.status().message() +
                              " (and the approvals could not be audited: " + st.message() + ")");
    }
    return verdict.status();
  }
  QV_ASSIGN_OR_RETURN(ClusterConfig next, ApplyEnrollment(*current, r.payload));
  const NodeEntry& added = next.nodes.back();
  std::string approvers;
  for (const auto& a : verdict->approvers) approvers += (approvers.empty() ? "" : ",") + a;
  events.push_back({"enroll",
                    s.peer().name,
                    "",
                    rid,
                    "node " + added.id + " enrolled: " + EnrollmentText(added),
                    {{"node", added.id},
                     {"site", added.site},
                     {"key", PublicKeyToText(added.public_key)},
                     {"approved_by", approvers}}});
  QV_RETURN_IF_ERROR(AuditDurably(events));
  QV_RETURN_IF_ERROR(store_->AddEnrollment(r.payload));
  auto pinned = PinKeys(next);
  {
    std::lock_guard<std::mutex> swap(cluster_mu_);
    cluster_ = std::make_shared<const ClusterConfig>(std::move(next));
    pinned_ = std::move(pinned);
  }
  Log("event=enroll node=" + added.id + " site=" + added.site + " request=" + rid +
      " approved_by=" + approvers);
  Response resp;
  resp.message = "enrolled";
  return resp;
}

}  // namespace qv
