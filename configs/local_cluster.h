// Generates a complete local cluster for development and tests: keys (0600)
// for every node, the coordinator, custodians and one operator, a cluster
// file and one node file per node, all on 127.0.0.1.
//
//   DIR/cluster.toml
//   DIR/coordinator.key, DIR/operator.key, DIR/custodians/cN.key
//   DIR/nodes/node-NN/{node.toml, node.key, master.key, data/}
//
// Defaults (3 sites x 2 nodes) give m = nodes per site, so losing any whole
// site still restores, and t = nodes per site + 1, so one site's shares
// reveal nothing.
#ifndef QV_CONFIGS_LOCAL_CLUSTER_H_
#define QV_CONFIGS_LOCAL_CLUSTER_H_

#include <filesystem>

#include "configs/cluster_config.h"

namespace qv {

struct LocalClusterOptions {
  uint32_t sites = 3;
  uint32_t nodes_per_site = 2;
  uint32_t custodians = 5;
  uint32_t quorum = 3;
  uint32_t base_port = 7400;
  std::string host = "127.0.0.1";
  // 0: derived from the site layout as described above.
  uint32_t k = 0, m = 0, t = 0;
  // Spare nodes on a site of their own ("site-spare"), listed after the
  // others: backups leave them empty, repairs rebuild onto them.
  uint32_t spares = 0;
};

// DIR must not exist or be empty. Returns the cluster config it wrote.
Result<ClusterConfig> InitLocalCluster(const std::filesystem::path& dir,
                                       const LocalClusterOptions& options);

// A new node's files in a local cluster folder (DIR/nodes/ID/: node.key,
// master.key, node.toml, data/), for a node to be enrolled (qv cluster
// enroll). Writes nothing to the cluster file. Returns the node's entry:
// what an enrollment request names.
Result<NodeEntry> InitLocalNode(const std::filesystem::path& dir, const std::string& id,
                                const std::string& site, const std::string& host, uint16_t port);

std::filesystem::path NodeConfigPath(const std::filesystem::path& dir, const std::string& node_id);

}  // namespace qv

#endif  // QV_CONFIGS_LOCAL_CLUSTER_H_
