// `qv cluster add-node`, `qv cluster enroll request`, `qv cluster enroll
// run`, and `qv approve` for an enrollment request (quorum/enrollment.h).
// Kept apart from main.cc, which only registers them and calls them.
#ifndef QV_CLI_ENROLL_CMD_H_
#define QV_CLI_ENROLL_CMD_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "quorum/request.h"

namespace qv {

struct AddNodeArgs {
  std::string dir, id, site, host = "127.0.0.1";
  uint16_t port = 0;
};

struct EnrollRequestArgs {
  std::string cluster, key, node_id, site, address, node_key, purpose, ttl = "1h", out;
  bool armor = false;
};

struct EnrollRunArgs {
  std::string cluster, key, request, out;
  std::vector<std::string> approvals;
};

struct EnrollCommands {
  CLI::App* add_node;
  CLI::App* request;
  CLI::App* run;
};

// Adds `add-node` and `enroll request|run` under `qv cluster`.
EnrollCommands AddEnrollCommands(CLI::App& cluster, AddNodeArgs& add, EnrollRequestArgs& request,
                                 EnrollRunArgs& run);
int CmdAddNode(const AddNodeArgs& args);
int CmdEnrollRequest(const EnrollRequestArgs& args);
int CmdEnrollRun(const EnrollRunArgs& args);

// `qv approve` of an enrollment request: shows the node and the membership
// it joins, checks what every node would check, asks, signs.
struct ApproveEnrollmentArgs {
  std::string cluster, as, out, note;
  bool deny = false, yes = false;
  const KeyRef* key = nullptr;  // the custodian's, loaded by qv approve
  bool armor = false;
};
int CmdApproveEnrollment(const SignedRequest& request, const ApproveEnrollmentArgs& args);

}  // namespace qv

#endif  // QV_CLI_ENROLL_CMD_H_
