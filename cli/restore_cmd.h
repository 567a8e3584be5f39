// The restore ceremony's commands: `qv restore request`, `qv approve` and
// `qv restore run` (files or through the cluster). Kept apart from main.cc;
// main registers the options.
#ifndef QV_CLI_RESTORE_CMD_H_
#define QV_CLI_RESTORE_CMD_H_

#include <cstdint>
#include <string>
#include <vector>

namespace qv {

struct RequestArgs {
  std::string cluster, key, backup, purpose, destination, ttl = "1h", out;
  bool submit = false;  // also post it to the nodes (the ceremony through the cluster)
  bool armor = false;   // write it ASCII-armored (quorum/armor.h)
  bool json = false;
  int64_t valid_from = 0;  // unix seconds; 0 = now
};

struct ApproveArgs {
  std::string cluster, key, as, request, manifest, out, note;
  std::string request_id;  // through the cluster instead of files
  bool deny = false, yes = false, armor = false, json = false;
};

struct RunArgs {
  std::string cluster, key, request, request_key, dest;
  std::vector<std::string> approvals;
  bool json = false;
};

int CmdRestoreRequest(const RequestArgs& args);
int CmdApprove(const ApproveArgs& args);
int CmdRestoreRun(const RunArgs& args);

}  // namespace qv

#endif  // QV_CLI_RESTORE_CMD_H_
