// Starting and stopping a local cluster's node processes (qv cluster up /
// down): one background `qv node run` per node, its pid in
// DIR/nodes/ID/node.pid and its log in DIR/nodes/ID/node.log.
#ifndef QV_COORDINATOR_LOCAL_CLUSTER_CTL_H_
#define QV_COORDINATOR_LOCAL_CLUSTER_CTL_H_

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "base/status.h"

namespace qv {

struct StartedNode {
  std::string id, address;
  int pid = 0;
};

// Starts every node not already running, then waits until all answer a
// health check (or `wait` passes, which is an error naming the laggards).
Result<std::vector<StartedNode>> ClusterUp(const std::filesystem::path& dir,
                                           const std::filesystem::path& qv_binary,
                                           std::chrono::milliseconds wait);
// Starts node `id` if it is not running and waits for its health answer.
Status NodeUp(const std::filesystem::path& dir, const std::filesystem::path& qv_binary,
              const std::string& id, std::chrono::milliseconds wait);
// SIGKILL to node `id` (a crash: no clean stop), then waits until it is gone.
Status KillNode(const std::filesystem::path& dir, const std::string& id,
                std::chrono::milliseconds wait);
// SIGTERM to every node, SIGKILL after `grace`; returns how many were stopped.
Result<int> ClusterDown(const std::filesystem::path& dir, std::chrono::milliseconds grace);

}  // namespace qv

#endif  // QV_COORDINATOR_LOCAL_CLUSTER_CTL_H_
