// A node as a library object: the store, the audit log, the request
// service and witnessing, wired from a node file and a cluster file. No
// sockets, threads or timers: the daemon (node/daemon.cc) adds a server,
// signals and timers that call Tick() and WitnessRound(); tests and sim/
// drive the very same object in one process.
//
// Open() refuses a node id the cluster file does not list, a key file
// that is not the key the cluster file pins for it, and a cluster file whose
// nodes are not the membership this node first started in plus nodes
// enrolled by a quorum (quorum/enrollment.h; enrollments this node accepted
// that the file lacks are applied), rebuilds a lost
// metadata database from the backups' signed manifests and the audit log,
// removes what interrupted uploads left, and audits the config load and
// any recovery. Close() audits the stop and signs a checkpoint; a Node
// destroyed without Close() is a crash (nothing more is written).
//
// Thread-safe: Handle (through service()), Tick and WitnessRound may run on
// different threads at once; WitnessRound for one peer at a time.
#ifndef QV_NODE_NODE_H_
#define QV_NODE_NODE_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/clock.h"
#include "base/storage_faults.h"
#include "configs/cluster_config.h"
#include "node/audit_log.h"
#include "node/node_caller.h"
#include "node/node_service.h"
#include "node/node_store.h"
#include "node/witness.h"

namespace qv {

// What a node runs on. Pointers are not owned and must outlive the node.
struct NodeEnv {
  const Clock* clock = SystemClock::Default();
  LogSink log;  // null: stderr
  // Reaches a peer node (as this node, with its key) for prepare checks,
  // settling and witnessing; every exchange on the caller must end within
  // `budget`. Null: peers are never called.
  using Dialer = std::function<Result<std::unique_ptr<NodeCaller>>(
      const NodeEntry& peer, const SigningKey& as, std::chrono::milliseconds budget)>;
  Dialer dial;
  StorageFaults* faults = nullptr;
  // Told of each restore request newly submitted (NodeServiceOptions).
  std::function<void(const std::string& id, const std::string& summary)> on_pending;
  bool test_skip_quorum_check = false;  // see NodeServiceOptions; tests only
  bool test_scrub_from_leaves = false;  // see NodeServiceOptions; tests only
};

// The node's master key: from its 0600 file, or unwrapped by its PKCS#11
// token (master_key_pkcs11; PIN from the URI or QV_PKCS11_PIN), bound to
// MasterKeyContext(node id).
Result<SecretBytes> LoadMasterKey(const NodeConfig& config);
std::string MasterKeyContext(const std::string& node_id);

inline constexpr uint64_t kSelfScrubMaxBytes = 256ull << 20;

class Node {
 public:
  // `source` names where the config came from, for the audit log.
  static Result<std::unique_ptr<Node>> Open(const NodeConfig& config, ClusterConfig cluster,
                                            NodeEnv env, const std::string& source = "");
  ~Node();

  NodeService& service() { return *service_; }
  const NodeEntry& self() const { return self_; }
  // The cluster as the node knows it now (NodeService::cluster()).
  std::shared_ptr<const ClusterConfig> cluster() const { return service_->cluster(); }
  const SigningKey& key() const { return *key_; }
  const NodeConfig& config() const { return config_; }
  const AuditLog& audit() const { return *audit_; }

  // One timer tick: refusal counts flushed, and one round of two-phase
  // commit termination over the peers (NodeService::Settle).
  void Tick();
  // One witness round with `peer` (node/witness.h): its clock noted, a
  // mismatch alerted (once, until it changes) and audited. `stop` cuts the
  // round short.
  void WitnessRound(const NodeEntry& peer, const std::atomic<bool>* stop = nullptr);
  // The node scrubs its own disk (issue 15): for every published backup,
  // its leaves against the signed root, a random self_scrub_permille of its
  // units against their leaves (at most kSelfScrubMaxBytes a run), and its
  // share against the Feldman commitments. Logged and audited as one
  // "self-scrub" entry; each problem as an alert. Returns the problems.
  std::vector<std::string> SelfScrub();
  // The node's metrics as Prometheus text (node/metrics.h), with its
  // backups, stored bytes and pending requests read now.
  std::string MetricsText();
  // A clean stop: refusals flushed, the stop audited (with `why`), a
  // checkpoint signed. Call once, after the last request.
  void Close(const Status& why);

 private:
  Node() = default;
  Result<Response> CallPeer(const NodeEntry& peer, const Request& r,
                            std::chrono::milliseconds budget) const;
  NodeConfig config_;
  ClusterConfig cluster_;
  NodeEntry self_;
  NodeEnv env_;
  std::unique_ptr<SigningKey> key_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<NodeStore> store_;
  std::unique_ptr<NodeService> service_;
  std::unique_ptr<Witness> witness_;
  std::mutex alerted_mu_;
  std::map<std::string, std::string> alerted_;  // peer -> mismatch last alerted
};

}  // namespace qv

#endif  // QV_NODE_NODE_H_
