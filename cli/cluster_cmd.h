// Running a cluster on one machine and its nodes: `qv cluster init`, `up`
// and `down` (a local multi-site cluster, one process per node) and
// `qv node run` (one node daemon in the foreground). The enrollment
// commands (enroll_cmd.h) are registered under `qv cluster` here; the
// token ones join `qv node` from token_cmd.h. Kept apart from main.cc,
// which dispatches.
#ifndef QV_CLI_CLUSTER_CMD_H_
#define QV_CLI_CLUSTER_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

#include "cli/enroll_cmd.h"
#include "configs/local_cluster.h"

namespace qv {

struct ClusterArgs {
  std::string dir;
  LocalClusterOptions init;
  AddNodeArgs add_node;
  EnrollRequestArgs enroll_request;
  EnrollRunArgs enroll_run;
};
struct ClusterCommands {
  CLI::App *cluster, *init, *up, *down;
  EnrollCommands enroll;
};
// In the order help lists them: init, the enrollment commands, up, down.
ClusterCommands AddClusterCommands(CLI::App& app, ClusterArgs& args);
int CmdClusterInit(const ClusterArgs& args);
int CmdClusterUp(const ClusterArgs& args);
int CmdClusterDown(const ClusterArgs& args);

struct NodeCommands {
  CLI::App *node, *run;
};
NodeCommands AddNodeCommands(CLI::App& app, std::string& config);
// Serves the node `config` names until SIGINT/SIGTERM.
int CmdNodeRun(const std::string& config);

}  // namespace qv

#endif  // QV_CLI_CLUSTER_CMD_H_
