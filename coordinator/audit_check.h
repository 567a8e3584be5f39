// Fetching and cross-checking every node's audit trail (`qv audit verify`,
// `qv audit log`). Per node: the hash chain and the signed checkpoints
// (node/audit_log.h). Across nodes: every witness record one node holds
// about another must match that node's log now (a rewritten, re-signed or
// truncated history disagrees with what its peers countersigned), and every
// node that released for a request must agree on who asked and which key
// the share went to, and every node a release receipt names (the restore
// tells each releasing node which nodes released) must log that release. Problems name the node and
// the first broken entry.
#ifndef QV_COORDINATOR_AUDIT_CHECK_H_
#define QV_COORDINATOR_AUDIT_CHECK_H_

#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "node/audit_log.h"

namespace qv {

struct NodeAudit {
  std::string node;
  bool reachable = false;
  std::vector<AuditEntry> entries;
  std::vector<Checkpoint> checkpoints;
  std::vector<WitnessRecord> witnessed;  // what this node countersigned for others
  std::vector<std::string> problems;     // chain and checkpoint problems
};

struct AuditReport {
  std::vector<NodeAudit> nodes;
  std::vector<std::string> cross_problems;  // witness and release disagreements
  size_t witness_records_checked = 0;
  size_t releases = 0;  // distinct requests released by at least one node
  bool ok() const;
};

AuditReport CheckClusterAudit(ClusterSession& session);

}  // namespace qv

#endif  // QV_COORDINATOR_AUDIT_CHECK_H_
