// `qv repair`: regains a backup's redundancy after losses, under a quorum
// certificate for the operation "repair" (issue 15).
//
// The plan (manifest/repair_plan.h) travels in the request custodians
// approve. RunRepair then, on every node the repair involves, presents
// the certificate (each node verifies it itself); rebuilds each planned
// fragment from k good ones, as ciphertext only (Reed-Solomon over the
// encrypted units, each source unit checked against its signed leaf), and
// streams it to its node; has t helpers rebuild the fragment's key share
// on that node by share recovery (crypto/vss.h) over node-to-node
// channels; installs the next manifest revision (which names the one
// before by hash) on the new holders and then every other node. The
// coordinator never holds the data key, a share, or plaintext.
#ifndef QV_COORDINATOR_REPAIR_H_
#define QV_COORDINATOR_REPAIR_H_

#include <functional>
#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "coordinator/scrub.h"
#include "manifest/repair_plan.h"

namespace qv {

// A plan from a scrub: every fragment whose data or share failed goes back
// to its own node when that node answered the scrub, else to a cluster
// node that holds nothing of the backup, preferring a site that holds
// none of it, then the site holding least. kFailedPrecondition when the
// backup is healthy or there are too few spare nodes, kFailedPrecondition
// naming why when it is lost (fewer than k good fragments or t shares).
Result<RepairPlan> PlanRepair(const ClusterConfig& config, const SignedManifest& manifest,
                              const BackupHealth& health);

// A plan that moves `node`'s fragment (and share) of the backup to a spare
// chosen as PlanRepair chooses; the node wipes its copy once the spare
// holds it. kNotFound when the backup places nothing on `node`.
Result<RepairPlan> PlanDecommission(const ClusterConfig& config, const SignedManifest& manifest,
                                    const std::string& node);

struct RepairReport {
  BackupId id{};
  uint32_t revision = 0;       // the manifest revision now in force
  uint64_t bytes_rebuilt = 0;  // ciphertext written to new holders
  uint64_t bytes_read = 0;     // ciphertext read from sources
  size_t shares_rebuilt = 0;
  size_t nodes_updated = 0;  // nodes that installed the revision
  size_t nodes_wiped = 0;    // nodes the plan moved a fragment off, which erased their copy
  std::vector<std::string> problems;  // nodes that could not take the revision
  double seconds = 0;
};

// Progress: bytes of ciphertext rebuilt so far, and the total.
using RepairProgress = std::function<void(uint64_t done, uint64_t total)>;

// Carries out the certificate's plan through `session` (which must be the
// coordinator's: it signs the revision). Fails, naming the node and step,
// when any planned fragment or share cannot be rebuilt; nodes keep what
// they had until a fragment is installed whole.
Result<RepairReport> RunRepair(ClusterSession& session, const Certificate& certificate,
                               const RepairProgress& progress = {});

// The backup's manifest revisions, newest first, as the nodes keep them:
// the longest chain any reachable node holds, each revision checked
// against the hash its successor names. Fails when no node holds it.
Result<std::vector<SignedManifest>> ManifestHistory(ClusterSession& session, const BackupId& id);

}  // namespace qv

#endif  // QV_COORDINATOR_REPAIR_H_
