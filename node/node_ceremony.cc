// NodeService: the ceremony through the cluster (issue 16, node/pending.h).
//
// A pending request is only a convenience: the node verifies it as a
// release would (quorum/verify.h's CheckRequest against the backup's signed
// manifest, at this node's clock) before keeping it, and each vote against
// the backup's policy before keeping that; a release still verifies the
// whole certificate. Submissions and votes are audited before they are kept
// (an unaudited one is not kept), and each pinned peer may post at most
// max_posts_per_minute of them.
#include "base/text.h"
#include "node/node_service.h"

namespace qv {

Status NodeService::RateLimit(const std::string& peer) {
  const int64_t now = opt_.clock->NowUnix();
  std::lock_guard<std::mutex> lock(posts_mu_);
  auto& times = posts_[peer];  // pinned peers only: the map stays small
  std::erase_if(times, [&](int64_t t) { return t <= now - 60; });
  if (times.size() >= opt_.max_posts_per_minute) {
    const bool first = times.size() == opt_.max_posts_per_minute;
    if (first) times.push_back(now);  // marks the refusal audited this minute
    const std::string why = "rate limit: " + peer + " posted " +
                            std::to_string(opt_.max_posts_per_minute) +
                            " times in the last minute; try later";
    // The first refusal a minute is audited (Handle audits kPermissionDenied);
    // the rest of a flood is only logged.
    return first ? PermissionDenied(why) : FailedPrecondition(why);
  }
  times.push_back(now);
  return Status::Ok();
}

Status NodeService::CheckPendingRequest(const SignedRequest& sr, SignedManifest* manifest) const {
  const QuorumRequest& q = sr.request();
  QV_ASSIGN_OR_RETURN(Bytes encoded, store_->Manifest(q.backup_id));
  QV_ASSIGN_OR_RETURN(*manifest, SignedManifest::Parse(encoded, &coordinator_));
  VerifyInput in;
  in.operation = q.operation == kOpRepair ? kOpRepair : kOpRestore;
  in.backup_id = q.backup_id;
  in.manifest = manifest;
  in.requesters = &requesters_;
  in.now = opt_.clock->NowUnix();
  in.max_skew = opt_.max_skew;
  return CheckRequest(sr, in);
}

Status NodeService::AwaitsCustodian(const Session& s, const BackupId& backup) const {
  QV_ASSIGN_OR_RETURN(auto kept, store_->PendingRequests(opt_.clock->NowUnix()));
  for (const auto& e : kept) {
    auto sr = SignedRequest::Parse(e.request);
    if (!sr.ok() || sr->request().backup_id != backup) continue;
    if (store_->Spent(RequestIdToText(sr->id()), backup)) continue;
    QV_ASSIGN_OR_RETURN(Bytes encoded, store_->Manifest(backup));
    QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
    if (sm.manifest().policy.FindByKey(s.peer().key) != nullptr) return Status::Ok();
  }
  return PermissionDenied(
      "a custodian reads a backup's manifest only while a request about it "
      "waits for its approval");
}

Result<Response> NodeService::SubmitRequest(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(SignedRequest sr, SignedRequest::Parse(r.payload));
  const QuorumRequest& q = sr.request();
  if (q.backup_id != r.backup_id) return InvalidArgument("request is for another backup");
  if (q.requester_key != s.peer().key) {
    return PermissionDenied("a requester submits only its own requests (this one is " +
                            Printable(q.requester_id) + "'s)");
  }
  SignedManifest sm;
  QV_RETURN_IF_ERROR(CheckPendingRequest(sr, &sm));
  QV_RETURN_IF_ERROR(RateLimit(s.peer().name));
  const std::string rid = RequestIdToText(sr.id());
  const int64_t now = opt_.clock->NowUnix();
  QV_ASSIGN_OR_RETURN(auto kept, store_->PendingRequests(now, rid));
  Response resp;
  resp.message = rid;
  if (!kept.empty()) return resp;  // submitted before: nothing new
  const std::string summary = q.operation + " of " + BackupIdToText(q.backup_id) + " (" +
                              q.backup_name + ") by " + q.requester_id + ": " + q.purpose;
  QV_RETURN_IF_ERROR(AuditDurably({"request-submitted",
                                   s.peer().name,
                                   BackupIdToText(q.backup_id),
                                   rid,
                                   "pending: " + summary,
                                   {{"requester", q.requester_id},
                                    {"operation", q.operation},
                                    {"expires", std::to_string(q.expires_unix)}}}));
  QV_RETURN_IF_ERROR(
      store_->AddPending(rid, q.backup_id, sr.encoded(), now, q.expires_unix + opt_.max_skew));
  Log("event=request-submitted request=" + rid + " backup=" + BackupIdToText(q.backup_id) +
      " requester=" + q.requester_id);
  if (opt_.on_pending) opt_.on_pending(rid, Printable(summary));
  return resp;
}

Result<Response> NodeService::ListPending(Session& s, const Request& r) {
  std::string only;
  if (!r.payload.empty()) {
    if (r.payload.size() != 32) return InvalidArgument("a request id is 32 bytes");
    RequestId id;
    std::copy(r.payload.begin(), r.payload.end(), id.begin());
    only = RequestIdToText(id);
  }
  QV_ASSIGN_OR_RETURN(auto all, store_->PendingRequests(opt_.clock->NowUnix(), only));
  std::vector<PendingEntry> shown;
  for (auto& e : all) {
    auto sr = SignedRequest::Parse(e.request);
    if (!sr.ok()) continue;
    // A request used for a release here waits for nobody any more.
    if (store_->Spent(RequestIdToText(sr->id()), sr->request().backup_id)) continue;
    if (s.peer().role == PeerRole::kCustodian) {
      // A custodian sees what waits for it: requests its key may approve.
      auto encoded = store_->Manifest(sr->request().backup_id);
      auto sm = encoded.ok() ? SignedManifest::Parse(*encoded, &coordinator_)
                             : Result<SignedManifest>(encoded.status());
      if (!sm.ok() || sm->manifest().policy.FindByKey(s.peer().key) == nullptr) continue;
    }
    shown.push_back(std::move(e));
  }
  Response resp;
  resp.payload = EncodePendingList(shown);
  return resp;
}

Result<Response> NodeService::PostApproval(Session& s, const Request& r) {
  QV_ASSIGN_OR_RETURN(Approval a, Approval::Parse(r.payload));
  if (a.custodian_key != s.peer().key) {
    return PermissionDenied("a custodian posts only its own approvals (this one is signed by " +
                            PublicKeyToText(a.custodian_key).substr(0, 24) + "...)");
  }
  const std::string rid = RequestIdToText(a.request_id);
  QV_ASSIGN_OR_RETURN(auto kept, store_->PendingRequests(opt_.clock->NowUnix(), rid));
  if (kept.empty()) return NotFound("request " + rid.substr(0, 16) + " is not pending here");
  QV_ASSIGN_OR_RETURN(SignedRequest sr, SignedRequest::Parse(kept[0].request));
  if (sr.request().backup_id != r.backup_id) return InvalidArgument("vote is for another backup");
  SignedManifest sm;
  QV_RETURN_IF_ERROR(CheckPendingRequest(sr, &sm));
  // The vote judged exactly as a release will judge it.
  VerifyInput in;
  in.now = opt_.clock->NowUnix();
  in.max_skew = opt_.max_skew;
  std::vector<ApprovalCheck> checks;
  (void)VerifyApprovals(Certificate{sr, {a}}, sm.manifest().policy, in, Status::Ok(), &checks);
  if (checks.size() != 1 || !checks[0].valid()) {
    return PermissionDenied("vote not taken: " + Printable(a.custodian_id) + ": " +
                            (checks.empty() ? "unjudged" : checks[0].result));
  }
  QV_RETURN_IF_ERROR(RateLimit(s.peer().name));
  QV_RETURN_IF_ERROR(
      AuditDurably({a.approve ? "approval-posted" : "denial",
                    s.peer().name,
                    BackupIdToText(r.backup_id),
                    rid,
                    (a.approve ? "approved by " : "denied by ") + a.custodian_id +
                        (a.note.empty() ? "" : ": " + a.note),
                    {{"custodian", a.custodian_id}, {"signed", std::to_string(a.signed_unix)}}}));
  if (!a.approve) QV_RETURN_IF_ERROR(RememberDenials(rid, checks));
  QV_RETURN_IF_ERROR(store_->AddPendingVote(rid, a.custodian_id, r.payload));
  Response resp;
  resp.message = std::string(a.approve ? "approval" : "denial") + " of " + a.custodian_id + " kept";
  return resp;
}

}  // namespace qv
