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

#include <chrono>
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

// What `audit verify` reads from one node at most: past a bound the node
// is named and its log not checked further; the other nodes are checked.
struct AuditLimits {
  uint64_t max_entries = 4000000;      // entries, and as many checkpoints and witness records
  uint64_t max_bytes = 2048ull << 20;  // answered bytes
  std::chrono::milliseconds max_time{300000};
};

AuditReport CheckClusterAudit(ClusterSession& session, const AuditLimits& limits = {});
// Over one caller per node of `config` (nullptr: unreachable).
AuditReport CheckClusterAudit(const ClusterConfig& config, const std::vector<NodeCaller*>& callers,
                              const AuditLimits& limits = {});

}  // namespace qv

#endif  // QV_COORDINATOR_AUDIT_CHECK_H_
