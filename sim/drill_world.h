// What a drill acts on: a cluster, its actors' keys, and the ceremony
// (backup, request, approvals, restore, listing, audit verification) run
// by the real coordinator code. Two worlds implement it: the deterministic
// simulator (sim/simulation.h) and a live cluster of real processes on
// loopback (sim/live_cluster.h). The ceremony is written once, here; a world
// supplies sessions, keys, time, and the faults it can inflict on nodes.
// Not thread-safe.
#ifndef QV_SIM_DRILL_WORLD_H_
#define QV_SIM_DRILL_WORLD_H_

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "configs/cluster_config.h"
#include "coordinator/audit_check.h"
#include "coordinator/cluster.h"
#include "coordinator/pipeline.h"
#include "coordinator/repair.h"
#include "coordinator/scrub.h"
#include "crypto/secretbox.h"
#include "quorum/request.h"

namespace qv::sim {

// Audit entries that are evidence: refusals, replays, alerts, denials,
// aborted backups, recoveries; and how a report shows one.
bool IsEvidence(const AuditEntry& e);
std::string EvidenceLine(const std::string& node, const AuditEntry& e);

class DrillWorld {
 public:
  virtual ~DrillWorld() = default;

  virtual const ClusterConfig& cluster() const = 0;
  // "coordinator", "operator" (the requester), "c1".."cN" (custodians), a
  // node id (its key), or "attacker" (a key the cluster does not know).
  virtual Result<const SigningKey*> Key(const std::string& actor) = 0;
  // A session to the cluster as `actor`.
  virtual Result<std::unique_ptr<ClusterSession>> Session(const std::string& actor) = 0;
  virtual void Note(const std::string& line) = 0;
  // Audit entries of kinds that record refusals and alerts, appended since
  // the last call: "node-01 refusal (operator): ...".
  virtual std::vector<std::string> NewEvidence() = 0;
  // `text` with the world's folder written as "SIM".
  virtual std::string Relative(std::string text) const { return text; }

  // Node faults. Crash: gone without a clean stop; Restart: from its disk;
  // Destroy: the machine and its disk gone for good.
  virtual Status Crash(const std::string& node) = 0;
  virtual Status Restart(const std::string& node) = 0;
  virtual Status Destroy(const std::string& node) = 0;
  std::vector<std::string> NodesAt(const std::string& site) const;
  // A byte of the node's fragment of `backup` inverted on disk; or the
  // fragment cut to half, as a torn write at a power loss leaves it.
  Status CorruptFragment(const std::string& node, const std::string& backup);
  Status TearFragment(const std::string& node, const std::string& backup);
  // The node's master key file overwritten with another key (swapped or
  // corrupted), and the node restarted: the status of the restart.
  Status ReplaceMasterKey(const std::string& node);

  // The ceremony.
  struct StoredArtifact {
    BackupId id{};
    Bytes content;  // the one file's bytes
  };
  Result<BackupId> Backup(const std::string& label, uint64_t size, std::string* detail);
  const StoredArtifact* Backed(const std::string& label) const;
  // A restore request for backup `backup` signed by `requester`, living
  // `ttl` seconds.
  Status Request(const std::string& label, const std::string& backup, const std::string& requester,
                 int64_t ttl, std::string_view operation = "restore",
                 const std::string& destination = "sim");
  // `custodian` approves (or denies) request `label`, signing with `signer`
  // (the custodian's own key unless forged).
  Status Approve(const std::string& request, const std::string& custodian,
                 const std::string& signer, bool approve);
  // Presents request `label` with its approvals (or, when `approvals_of`
  // names another request, with that one's) as `presenter`; restores into
  // the world's folder and compares with what was backed up. Without
  // `prove`, the presenter lacks the request's one-time key.
  struct RestoreResult {
    bool restored = false;
    bool identical = false;
    bool anything_written = false;
    StatusCode code = StatusCode::kOk;  // why it did not restore
    std::string detail;
    std::vector<std::string> problems;
    int64_t ms = 0;  // time it took (simulated in the simulator)
  };
  RestoreResult Restore(const std::string& request, const std::string& presenter,
                        const std::string& approvals_of, bool prove);
  // `custodian` denies request `label` and posts the denial to every node
  // itself (as `qv approve --deny` does), keeping it out of the request's
  // approvals. Fails unless some node recorded it.
  Status PostDenial(const std::string& request, const std::string& custodian);
  // Repair (issue 15): a scrub of `backup` as the coordinator; the plan a
  // scrub gives; request `label`'s repair run by the coordinator.
  Result<BackupHealth> Scrub(const std::string& backup, double sample = 1.0);
  Result<RepairPlan> PlanRepairOf(const std::string& backup);
  Result<RepairReport> Repair(const std::string& request);
  // Request `label` with its approvals so far, as a certificate.
  Result<Certificate> CertificateOf(const std::string& label) const;
  // Published backups as the nodes list them (id -> nodes holding it).
  std::map<BackupId, size_t> Listed();
  AuditReport AuditVerify();

 protected:
  virtual const Clock& Now() const = 0;  // signing times
  virtual double ElapsedMs() const = 0;  // for durations
  virtual std::filesystem::path WorkDir() const = 0;
  // The node's folder (node file, keys, data/).
  virtual std::filesystem::path NodeDir(const std::string& node) const = 0;
  std::filesystem::path DataDir(const std::string& node) const { return NodeDir(node) / "data"; }
  virtual void Tune(BackupOptions&) {}
  virtual void Tune(RestoreOptions&) {}
  virtual void AfterOperation() {}

 private:
  struct PendingRequest {
    SignedRequest request;
    BoxKeyPair reply;
    std::vector<Approval> approvals;
    std::string backup;
  };
  std::map<std::string, StoredArtifact> backups_;
  std::map<std::string, std::unique_ptr<PendingRequest>> requests_;
  uint32_t restores_ = 0;
};

}  // namespace qv::sim

#endif  // QV_SIM_DRILL_WORLD_H_
