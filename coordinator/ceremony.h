// The ceremony through the cluster, client side (issue 16): submitting a
// signed request to the nodes, listing what is pending there, posting a
// custodian's vote, and collecting the votes into a certificate. The file
// flow (request and approval files) stays for air-gapped sites; both end
// in the same certificate, which every node verifies at release.
//
// Functions over an open ClusterSession (not owned); not thread-safe.
// Node answers are untrusted: each request and approval is parsed and its
// signature checked here, and anything that does not verify is dropped
// and named in `problems`.
#ifndef QV_COORDINATOR_CEREMONY_H_
#define QV_COORDINATOR_CEREMONY_H_

#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "quorum/request.h"

namespace qv {

// Sends `request` to every reachable node to keep as pending. Returns how
// many nodes keep it.
size_t SubmitRequest(ClusterSession& session, const SignedRequest& request,
                     std::vector<std::string>* problems);

struct PendingView {
  SignedRequest request;
  int64_t received = 0;             // earliest any node took it
  std::vector<Approval> approvals;  // one per custodian key, denials first
  size_t nodes = 0;                 // how many nodes keep it
};

// What every reachable node keeps, merged by request id (all requests, or
// the one named by `only`), oldest first. An approval counts once per
// custodian key; a custodian's denial anywhere wins over its approval.
// kIoError when no node answered (each node's reason in the message),
// so "nothing pending" is never said on no evidence.
Result<std::vector<PendingView>> ListPending(ClusterSession& session, const RequestId* only,
                                             std::vector<std::string>* problems);

// Posts a custodian's own vote to every reachable node. Returns how many
// kept it.
size_t PostVote(ClusterSession& session, const Approval& vote, const BackupId& backup,
                std::vector<std::string>* problems);

}  // namespace qv

#endif  // QV_COORDINATOR_CEREMONY_H_
