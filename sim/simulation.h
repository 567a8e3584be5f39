// A simulated cluster of real nodes (node/node.h) and the real coordinator
// (coordinator/cluster.h) in one process, on one thread, in a seeded world
// (sim/world.h): the cluster is made by the same code as `qv cluster init`,
// every node keeps its real on-disk state (SQLite, fragments, sealed
// shares, audit log) in the simulation's folder, and crashes, restarts,
// storage faults, clock skew, partitions and slow links are injected
// around it. Actors hold exactly the keys a scenario grants them: the
// coordinator, requesters, custodians, and an attacker who may be given a
// node's disk and keys, a custodian's key or the coordinator's key.
//
// Every action appends lines to events(); with the same seed, the same
// actions give the same lines. Not thread-safe.
#ifndef QV_SIM_SIMULATION_H_
#define QV_SIM_SIMULATION_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "configs/cluster_config.h"
#include "coordinator/audit_check.h"
#include "coordinator/cluster.h"
#include "crypto/secretbox.h"
#include "node/node.h"
#include "quorum/request.h"
#include "sim/drill_world.h"
#include "sim/world.h"

namespace qv::sim {

struct Topology {
  uint32_t sites = 3, nodes_per_site = 2, custodians = 5, quorum = 3;
  uint32_t k = 0, m = 0, t = 0;     // 0: as `qv cluster init` derives them
  uint32_t spares = 0;              // spare nodes on a site of their own (--spares)
  Network::Link lan{1, 125000, 0};  // 1 Gb/s, 1 ms
  Network::Link wan{20, 12500, 0};  // 100 Mb/s, 20 ms
};

struct SimOptions {
  uint64_t seed = 1;
  std::filesystem::path dir;                     // created; must not exist or be empty
  int64_t start_unix = 1798761600;               // 2027-01-01T00:00:00Z
  bool test_skip_quorum_check = false;           // sim_test only: see NodeServiceOptions
  std::set<std::string> test_scrub_from_leaves;  // sim_test only: these nodes answer scrubs
                                                 // from their stored leaves
};

// Where actors outside the cluster sit in the network.
inline constexpr char kOpsSite[] = "ops";

class Simulation : public DrillWorld {
 public:
  static Result<std::unique_ptr<Simulation>> New(const Topology& topology,
                                                 const SimOptions& options);
  ~Simulation();

  const ClusterConfig& cluster() const override { return cluster_; }
  SimClock& clock() { return clock_; }
  Network& net() { return net_; }
  const std::vector<std::string>& events() const { return events_; }
  void Note(const std::string& line) override;
  const std::filesystem::path& dir() const { return dir_; }
  // `text` with the simulation's folder written as "SIM", so reports do not
  // depend on where a run kept its disks.
  std::string Relative(std::string text) const override;

  // --- Nodes ---------------------------------------------------------------
  bool Running(const std::string& node) const;
  // Gone without a clean stop (nothing more written); Restart reopens it
  // from its disk as the daemon would.
  Status Crash(const std::string& node) override;
  Status Restart(const std::string& node) override;
  // The machine and its disk destroyed: it never comes back.
  Status Destroy(const std::string& node) override;
  void SetSkew(const std::string& node, int64_t seconds);
  // The next `after`-th time `node` reaches storage step `point`
  // (base/storage_faults.h), it fails with `error`, or (with `crash`) the
  // node dies there.
  void AddFault(const std::string& node, const std::string& point, Status error, bool crash,
                uint32_t after = 0);
  void ClearFaults();
  // Timers, as the daemon runs them, on every running node: settle rounds,
  // and witness rounds with every peer.
  void TickAll();
  // The node's scheduled self-scrub, run now: the problems it found.
  Result<std::vector<std::string>> SelfScrub(const std::string& node);
  void WitnessAll();
  // Takes down every node a fault crashed in the middle of a request.
  void ReapCrashed();

  // --- Actors --------------------------------------------------------------
  // "coordinator", "operator" (the requester), "c1".."cN" (custodians), a
  // node id (its key), or "attacker" (a key the cluster does not know).
  Result<const SigningKey*> Key(const std::string& actor) override;
  // A session to the cluster as `actor`, from site kOpsSite.
  Result<std::unique_ptr<ClusterSession>> Session(const std::string& actor) override;

  // --- Attacker capabilities -----------------------------------------------
  // Copies a node's disk and key files to the attacker's folder.
  Status Steal(const std::string& node);
  // With the stolen disks only: unseal every share of `backup` found and
  // try to rebuild the key; fails naming why.
  Status CombineStolen(const std::string& backup);
  // The node's audit history rewritten (its first release turned into a
  // refusal), every hash recomputed and every checkpoint re-signed with the
  // node's own key (the node is stopped and restarted around it).
  Status RewriteAudit(const std::string& node);
  // The node's stored manifest of `backup` replaced by one signed with the
  // attacker's key (weights swapped).
  Status ReplaceManifest(const std::string& node, const std::string& backup);
  // The node lies from now on: shares it releases are wrong, units it
  // serves are altered.
  void MakeLiar(const std::string& node);
  // Writes the cluster file with a bad policy and restarts every node.
  Status Misconfigure(const std::string& what, std::vector<std::string>* refusals);
  // The bad policy as `qv cluster init` would be asked for it.
  Status InitWith(const std::string& what);
  Status RestoreClusterFile();

  // Audit entries of kinds that record refusals and alerts, appended by
  // running nodes since the last call: "node-01 refusal: ...".
  std::vector<std::string> NewEvidence() override;

 protected:
  const Clock& Now() const override { return clock_; }
  double ElapsedMs() const override { return clock_.MonotonicMs(); }
  std::filesystem::path WorkDir() const override { return dir_; }
  std::filesystem::path NodeDir(const std::string& node) const override;
  // One worker: every call to a node happens on this thread, in order.
  void Tune(BackupOptions& o) override {
    o.workers = 1;
    o.max_unit_size = 64 * 1024;
  }
  void Tune(RestoreOptions& o) override { o.workers = 1; }
  void AfterOperation() override { ReapCrashed(); }

 private:
  class Faults;
  struct SimNode;
  Simulation(const SimOptions& o);
  Result<NodeEnv> EnvFor(SimNode& n);
  Status OpenNode(SimNode& n);
  std::string Stamp() const;

  SimOptions opt_;
  std::filesystem::path dir_;
  Rng rng_;
  SimClock clock_;
  Network net_;
  SeededExecutor executor_;
  ClusterConfig cluster_;
  std::string cluster_toml_;
  std::map<std::string, std::unique_ptr<SimNode>> nodes_;
  std::map<std::string, std::unique_ptr<SigningKey>> keys_;
  std::map<std::string, uint64_t> evidence_seen_;  // node -> audit seq read
  std::vector<std::string> events_;
};

}  // namespace qv::sim

#endif  // QV_SIM_SIMULATION_H_
