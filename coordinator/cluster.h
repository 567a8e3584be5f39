// The coordinator's view of a cluster: one authenticated connection per
// node, opened in parallel; nodes that cannot be reached are named in
// problems() and skipped where the operation allows it (restore, list,
// status), or fail the operation where it does not (backup needs every node).
#ifndef QV_COORDINATOR_CLUSTER_H_
#define QV_COORDINATOR_CLUSTER_H_

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/executor.h"
#include "configs/cluster_config.h"
#include "coordinator/node_io.h"
#include "coordinator/pipeline.h"
#include "node/metrics.h"
#include "node/node_client.h"
#include "quorum/request.h"

namespace qv {

struct NodeHealth {
  std::string id, site, address;
  bool ok = false;
  std::string detail;
  double ms = 0;
  // The node's clock minus this machine's, in seconds, when it answered.
  std::optional<int64_t> skew;
  // What the node says of itself (node/metrics.h), when it answered.
  std::optional<NodeStats> stats;
};

// The order to read fragments in, given each one's connect-and-handshake
// time in ms: fastest first, except that times up to twice the fastest plus
// kSameSpeedMs are noise, not speed (six handshakes at once on two loaded
// cores spread over 2-14 ms); those fragments are read in index order, so
// data fragments, which need no decoding, go before parity.
inline constexpr double kSameSpeedMs = 10.0;
std::vector<uint32_t> FragmentReadOrder(std::vector<std::pair<double, uint32_t>> ms_and_fragment);

// What a session runs on: how it reaches a node (a socket in production,
// an in-process or simulated caller in tests and sim/), where its
// concurrent work runs, and its clock. Pointers are not owned.
struct SessionEnv {
  using Dialer = std::function<Result<std::unique_ptr<NodeCaller>>(const NodeEntry& node)>;
  Dialer dial;
  Executor* executor = ThreadExecutor::Default();
  const Clock* clock = SystemClock::Default();
};

class ClusterSession {
 public:
  // Over authenticated sockets, as `key`.
  static Result<std::unique_ptr<ClusterSession>> Open(ClusterConfig config, const SigningKey* key,
                                                      const ClientOptions& options = {});
  // Over whatever `env.dial` reaches nodes with; `key` signs manifests.
  static Result<std::unique_ptr<ClusterSession>> Open(ClusterConfig config, const SigningKey* key,
                                                      SessionEnv env);

  const ClusterConfig& config() const { return config_; }
  const std::vector<std::string>& problems() const { return problems_; }
  size_t reachable() const;

  Result<BackupOutcome> Backup(const Artifact& artifact, BackupOptions options);
  // Presents the certificate to every reachable node holding the backup;
  // rebuilds from those that release (shares opened with reply_key), named
  // problems for the rest. Fails without writing when fewer than t release.
  Result<RestoreReport> Restore(const Certificate& certificate, const BoxKeyPair& reply_key,
                                ArtifactWriter& writer, const RestoreOptions& options,
                                std::vector<std::string>* problems);
  // The backups published on at least one node, with how many reachable
  // nodes hold each published and how many still prepared (its commit still
  // spreading). A backup only prepared anywhere is not listed: it may still
  // be aborted. Fails naming every node's problem when no node answered.
  struct Listed {
    BackupId id{};
    size_t published = 0, committing = 0;
  };
  Result<std::vector<Listed>> List();
  Result<SignedManifest> Manifest(const BackupId& id, std::vector<std::string>* problems);
  std::vector<NodeHealth> Health();
  // Posts custodians' denials (a certificate of the request and denials
  // only) to every reachable node, which keep them as vetoes. Returns how
  // many nodes recorded them; `problems` names the others.
  size_t PostDenial(const Certificate& denials, std::vector<std::string>* problems);
  // Presents an enrollment certificate (quorum/enrollment.h) to every
  // node; each verifies it itself. One outcome per node of the cluster, in
  // order: "enrolled", "already enrolled", or why not (unreachable, refused).
  struct EnrollOutcome {
    std::string node;
    Status status;
    std::string message;
  };
  std::vector<EnrollOutcome> PostEnrollment(const Certificate& enrollment);
  // The connection to node i of the cluster file, or nullptr if unreachable.
  NodeCaller* caller(size_t i) { return clients_[i].get(); }
  // The connection to the node named `id`, or nullptr.
  NodeCaller* caller(const std::string& id);
  const SigningKey* key() const { return key_; }
  Executor* executor() const { return env_.executor; }
  const Clock& clock() const { return *env_.clock; }

 private:
  ClusterSession() = default;
  std::vector<NodeCaller*> Reachable();
  ClusterConfig config_;
  const SigningKey* key_ = nullptr;
  SessionEnv env_;
  std::vector<std::unique_ptr<NodeCaller>> clients_;  // nullptr where unreachable
  std::vector<double> connect_ms_;
  std::vector<std::string> problems_;
};

}  // namespace qv

#endif  // QV_COORDINATOR_CLUSTER_H_
