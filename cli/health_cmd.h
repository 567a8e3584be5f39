// The operator's view of a cluster's health: `qv status` (each node up or
// down, with its clock and counts) and `qv scrub` (proofs that each node
// still holds its fragment and share, no share seen). Kept apart from
// main.cc, which registers them through Add*Command and dispatches.
#ifndef QV_CLI_HEALTH_CMD_H_
#define QV_CLI_HEALTH_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

namespace qv {

struct StatusArgs {
  std::string cluster, key;
  bool json = false;
};

struct ScrubArgs {
  std::string cluster, key, backup;
  double sample = 0.01;
  bool json = false;
};

CLI::App* AddStatusCommand(CLI::App& app, StatusArgs& args);
CLI::App* AddScrubCommand(CLI::App& app, ScrubArgs& args);
// Exit 1 if any node is unreachable; `source` says where the cluster file
// came from (discovery.h).
int CmdStatus(const StatusArgs& args, const std::string& source);
// Exit 0 when every backup scrubbed is healthy, 1 otherwise.
int CmdScrub(const ScrubArgs& args);

}  // namespace qv

#endif  // QV_CLI_HEALTH_CMD_H_
