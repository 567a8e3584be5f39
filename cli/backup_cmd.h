// `qv backup`: a model file or folder encrypted, erasure-coded and its key
// split across a cluster's nodes (or a --local development layout), with
// the signed manifest's id printed. Kept apart from main.cc, which
// dispatches.
#ifndef QV_CLI_BACKUP_CMD_H_
#define QV_CLI_BACKUP_CMD_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace qv {

struct BackupArgs {
  std::string local, cluster, key, cipher = "chacha20-poly1305", unit = "256KiB", parent;
  std::string commit_window = "10m";
  uint32_t k = 4, m = 2, t = 3;
  bool kmt_given = false;  // --k/--m/--t on the command line
  std::vector<std::string> paths;
  bool json = false;
  std::string name;
  bool name_given = false;  // --name on the command line, even empty
  std::vector<std::string> tags;
};

// `words` are the command line's (for the cluster file whose k, m and t
// help shows as the defaults).
CLI::App* AddBackupCommand(CLI::App& app, BackupArgs& args, const std::vector<std::string>& words);
int CmdBackup(const BackupArgs& args);

}  // namespace qv

#endif  // QV_CLI_BACKUP_CMD_H_
