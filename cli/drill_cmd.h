// `qv drill run`: drills (configs/drills/*.toml) on the deterministic
// simulator (sim/drill.h). Kept apart from main.cc, which only registers
// it and calls it.
#ifndef QV_CLI_DRILL_CMD_H_
#define QV_CLI_DRILL_CMD_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace qv {

struct DrillArgs {
  std::vector<std::string> files;
  bool all = false;
  uint64_t seed = 1;
  bool json = false;
  std::string report;  // Markdown report file
  std::string work;    // simulation folders; default: a fresh temporary one
  bool keep = false;
  bool live = false;    // against a real loopback cluster instead
  std::string cluster;  // its cluster file
};

struct DrillBenchArgs {
  uint32_t sites = 10, nodes_per_site = 10, backups = 1000, restores = 100;
  uint64_t size = 4096;
  uint64_t seed = 1;
  std::string work;
  bool json = false;
};

// Adds `drill run` and `drill bench` to `app`; returns both subcommands.
std::pair<CLI::App*, CLI::App*> AddDrillCommand(CLI::App& app, DrillArgs& args,
                                                DrillBenchArgs& bench);
int CmdDrillBench(const DrillBenchArgs& args);
// Exit status: 0 when every drill passed, 1 when any failed or could not be
// read, 2 for bad usage.
int CmdDrillRun(const DrillArgs& args);

}  // namespace qv

#endif  // QV_CLI_DRILL_CMD_H_
