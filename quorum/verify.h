// Deciding whether a certificate authorizes an operation on a backup. Every
// node runs this itself, against the policy in the backup's signed manifest,
// before it releases anything. Pure: no clock, storage or network inside,
// so nodes, tests and sim/ give it the same inputs and get the same verdict.
//
// A refusal is kPermissionDenied whose message is the precise reason a
// person can act on: "expired ...", "below quorum: 2 of 3", "unknown
// custodian c7", "bad signature from c2", "requester approved own request",
// "certificate is for backup A, not B", ... Replay is the caller's check
// (it needs the node's record of used request ids).
#ifndef QV_QUORUM_VERIFY_H_
#define QV_QUORUM_VERIFY_H_

#include <string>
#include <vector>

#include "configs/cluster_config.h"
#include "manifest/manifest.h"
#include "quorum/request.h"

namespace qv {

struct VerifyInput {
  std::string_view operation;  // what the node is asked to do
  BackupId backup_id{};        // the backup it is asked about
  const SignedManifest* manifest = nullptr;
  const std::vector<Principal>* requesters = nullptr;  // from the cluster file
  int64_t now = 0;
  int64_t max_skew = 300;  // seconds of clock disagreement tolerated
  // Custodians this node has seen deny this request before (in an earlier
  // certificate, or posted to it): their denials count even when the
  // certificate leaves them out.
  const std::vector<std::string>* known_deniers = nullptr;
};

// One approval as the verifier judged it. `result` is "valid" only for an
// approval whose signature verifies under a custodian of the policy, over
// this request, within its lifetime; otherwise it says why it does not count.
struct ApprovalCheck {
  std::string custodian;  // the id the approval claims
  bool approve = true;
  std::string result;
  int64_t signed_unix = 0;  // when the custodian says it signed
  std::string note;         // the custodian's note (validated text)
  bool valid() const { return result == "valid"; }
};

struct Verdict {
  RequestId request_id{};
  std::vector<std::string> approvers;  // distinct custodians whose approvals counted
  std::vector<std::string> deniers;
};

// The request alone against the backup's signed manifest and the cluster's
// requesters: operation, backup and manifest, the name custodians read,
// the requester, and its times. What VerifyCertificate checks before the
// approvals, and what a custodian's qv checks before signing anything.
Status CheckRequest(const SignedRequest& request, const VerifyInput& in);

// `checks`, if given, receives every approval's check, whatever the verdict,
// so a node can log each one with its result. Any approval that is not
// valid refuses the certificate, and the refusal names every bad one. A
// valid denial by any custodian (in the certificate or known before) is a
// veto: the certificate is refused, naming who denied.
Result<Verdict> VerifyCertificate(const Certificate& certificate, const VerifyInput& in,
                                  std::vector<ApprovalCheck>* checks = nullptr);

// The parts of the above that do not depend on what the request is about,
// for requests about something other than a backup (quorum/enrollment.h).
// The request's requester must be listed (by key, under the id it names).
Status CheckRequester(const QuorumRequest& q, const std::vector<Principal>& requesters);
// Created no later than now + skew, not expired, lifetime within the limit.
Status CheckTimes(const QuorumRequest& q, uint32_t max_request_seconds, const VerifyInput& in);
// The approvals under `policy` (in.manifest and in.requesters unused):
// `request_checked` is the verdict on the request itself, returned after
// every approval has been judged (so `checks` is filled either way).
Result<Verdict> VerifyApprovals(const Certificate& certificate, const Policy& policy,
                                const VerifyInput& in, const Status& request_checked,
                                std::vector<ApprovalCheck>* checks = nullptr);

}  // namespace qv

#endif  // QV_QUORUM_VERIFY_H_
