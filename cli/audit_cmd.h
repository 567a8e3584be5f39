// `qv audit verify` and `qv audit log` (issue 17: readable): the nodes'
// tamper-evident logs checked, and read as one line per event across the
// cluster. Kept apart from main.cc.
#ifndef QV_CLI_AUDIT_CMD_H_
#define QV_CLI_AUDIT_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

namespace qv {

struct AuditArgs {
  std::string cluster, key, backup, request, since;
  size_t last = 0;  // 0: all
  bool json = false;
};
struct AuditCommands {
  CLI::App *verify, *log;
};

AuditCommands AddAuditCommands(CLI::App& app, AuditArgs& args);
int CmdAuditVerify(const AuditArgs& args);
int CmdAuditLog(const AuditArgs& args);

}  // namespace qv

#endif  // QV_CLI_AUDIT_CMD_H_
