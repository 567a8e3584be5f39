// `qv keygen` (a key file, or a key made inside a PKCS#11 token) and
// `qv node wrap-master-key`, which moves a node's master key under a
// token's key (crypto/pkcs11.h, issue 16). Kept apart from main.cc.
#ifndef QV_CLI_TOKEN_CMD_H_
#define QV_CLI_TOKEN_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

namespace qv {

struct WrapMasterArgs {
  std::string config, uri;
};

struct KeygenArgs {
  std::string out, uri;
};

CLI::App* AddKeygenCommand(CLI::App& app, KeygenArgs& args);
int CmdKeygen(const KeygenArgs& args);

CLI::App* AddWrapMasterCommand(CLI::App& node, WrapMasterArgs& args);
int CmdWrapMaster(const WrapMasterArgs& args);

}  // namespace qv

#endif  // QV_CLI_TOKEN_CMD_H_
