// `qv node wrap-master-key`: moves a node's master key under a PKCS#11
// token's key (crypto/pkcs11.h, issue 16). Kept apart from main.cc.
#ifndef QV_CLI_TOKEN_CMD_H_
#define QV_CLI_TOKEN_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

namespace qv {

struct WrapMasterArgs {
  std::string config, uri;
};

CLI::App* AddWrapMasterCommand(CLI::App& node, WrapMasterArgs& args);
int CmdWrapMaster(const WrapMasterArgs& args);

}  // namespace qv

#endif  // QV_CLI_TOKEN_CMD_H_
