// `qv node run --config FILE`: loads the node file and the cluster file,
// refuses to start on any config error or if its key is not the one the
// cluster file pins for it, opens storage (cleaning interrupted uploads),
// listens, writes its pid file beside the node file, and serves until
// SIGINT/SIGTERM. Logs start, config load and stop.
#ifndef QV_NODE_DAEMON_H_
#define QV_NODE_DAEMON_H_

#include <filesystem>

#include "base/status.h"

namespace qv {

Status RunNodeDaemon(const std::filesystem::path& node_config);

}  // namespace qv

#endif  // QV_NODE_DAEMON_H_
