// `qv restore`: the restore ceremony's `request` and `run` (files or
// through the cluster; `qv approve` is approve_cmd.h), and `qv restore
// --local`, a development layout restored without a quorum. Kept apart
// from main.cc, which dispatches.
#ifndef QV_CLI_RESTORE_CMD_H_
#define QV_CLI_RESTORE_CMD_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace qv {

struct RestoreArgs {
  std::string local, cluster, key, backup, dest, signer;
  bool json = false;
};

struct RequestArgs {
  std::string cluster, key, backup, purpose, destination, ttl = "1h", out;
  bool submit = false;  // also post it to the nodes (the ceremony through the cluster)
  bool armor = false;   // write it ASCII-armored (quorum/armor.h)
  bool json = false;
  int64_t valid_from = 0;  // unix seconds; 0 = now
};

struct RunArgs {
  std::string cluster, key, request, request_key, dest;
  std::vector<std::string> approvals;
  bool json = false;
};

struct RestoreCommands {
  CLI::App *restore, *request, *run;
};
RestoreCommands AddRestoreCommands(CLI::App& app, RestoreArgs& local, RequestArgs& request,
                                   RunArgs& run);
// `qv restore --local`: exit 2 without --backup and --dest.
int CmdRestore(const RestoreArgs& args);
int CmdRestoreRequest(const RequestArgs& args);
int CmdRestoreRun(const RunArgs& args);

}  // namespace qv

#endif  // QV_CLI_RESTORE_CMD_H_
