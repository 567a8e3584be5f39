// `qv approve`: a custodian reads a restore (or repair) request, checks
// what every node will check, and signs an approval or a denial, from a
// request file or through the cluster (posting the vote back). Kept apart
// from main.cc, which dispatches.
#ifndef QV_CLI_APPROVE_CMD_H_
#define QV_CLI_APPROVE_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

namespace qv {

struct ApproveArgs {
  std::string cluster, key, as, request, manifest, out, note;
  std::string request_id;  // through the cluster instead of files
  bool deny = false, yes = false, armor = false, json = false;
};

CLI::App* AddApproveCommand(CLI::App& app, ApproveArgs& args);
int CmdApprove(const ApproveArgs& args);

}  // namespace qv

#endif  // QV_CLI_APPROVE_CMD_H_
