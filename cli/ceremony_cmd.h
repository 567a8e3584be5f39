// The ceremony through the cluster, CLI side (issue 16): `qv pending`,
// and the pieces `qv approve --request ID`, `qv restore request --submit`
// and `qv restore run` without approval files use (coordinator/ceremony.h).
#ifndef QV_CLI_CEREMONY_CMD_H_
#define QV_CLI_CEREMONY_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

#include "coordinator/cluster.h"
#include "manifest/manifest.h"
#include "quorum/request.h"

namespace qv {

struct PendingArgs {
  std::string cluster, key;
  bool json = false, watch = false;
  uint32_t interval_s = 2;
};

CLI::App* AddPendingCommand(CLI::App& app, PendingArgs& args);
int CmdPending(const PendingArgs& args);

// The request `id_text` (a request id, or a unique prefix of 8 or more hex
// characters) as the nodes keep it, its votes as a certificate, and the
// backup's signed manifest (verified under the pinned coordinator key, and
// the one the request names).
struct FetchedRequest {
  Certificate certificate;
  SignedManifest manifest;
};
Result<FetchedRequest> FetchRequest(ClusterSession& session, const std::string& id_text);

}  // namespace qv

#endif  // QV_CLI_CEREMONY_CMD_H_
