// `qv repair request` and `qv repair run` (coordinator/repair.h). Kept
// apart from main.cc, which only registers them and calls them.
#ifndef QV_CLI_REPAIR_CMD_H_
#define QV_CLI_REPAIR_CMD_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace qv {

struct RepairRequestArgs {
  std::string cluster, key, coordinator_key, backup, plan, decommission, purpose, ttl = "1h", out;
  bool json = false, armor = false;
};

struct RepairRunArgs {
  std::string cluster, key, request;
  std::vector<std::string> approvals;
  bool json = false;
};

struct RepairBenchArgs {
  std::string size = "1GiB";
  uint32_t recoveries = 100;
  std::string work;
  bool json = false;
};

struct RepairCommands {
  CLI::App* request;
  CLI::App* run;
  CLI::App* bench;
};

// Adds `repair request`, `repair run` and `repair bench` to `app`.
RepairCommands AddRepairCommand(CLI::App& app, RepairRequestArgs& request, RepairRunArgs& run,
                                RepairBenchArgs& bench);
int CmdRepairBench(const RepairBenchArgs& args);
int CmdRepairRequest(const RepairRequestArgs& args);
int CmdRepairRun(const RepairRunArgs& args);

}  // namespace qv

#endif  // QV_CLI_REPAIR_CMD_H_
