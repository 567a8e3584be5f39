#include "node/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include "base/file_util.h"
#include "configs/cluster_config.h"
#include "node/node_service.h"
#include "node/server.h"

namespace qv {

namespace fs = std::filesystem;

Status RunNodeDaemon(const fs::path& node_config) {
  QV_ASSIGN_OR_RETURN(NodeConfig nc, NodeConfig::Load(node_config));
  QV_ASSIGN_OR_RETURN(ClusterConfig cluster, ClusterConfig::Load(nc.cluster_file));
  const NodeEntry* self = cluster.FindNode(nc.id);
  if (self == nullptr) {
    return InvalidArgument(node_config.string() + ": node.id: " + nc.id + " is not in " +
                           nc.cluster_file.string());
  }
  QV_ASSIGN_OR_RETURN(auto key, SigningKey::Load(nc.key_file));
  if (key->public_key() != self->public_key) {
    return PermissionDenied(nc.key_file.string() + " is not the key " + nc.cluster_file.string() +
                            " pins for " + nc.id);
  }
  struct stat st;
  if (::stat(nc.master_key_file.c_str(), &st) != 0) return ErrnoError(nc.master_key_file.string());
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(nc.master_key_file.string() +
                            " is readable by group or others (chmod 600)");
  }
  QV_ASSIGN_OR_RETURN(auto mk_file, File::OpenRead(nc.master_key_file));
  SecretBytes master(32);
  QV_ASSIGN_OR_RETURN(uint64_t mk_size, mk_file->Size());
  if (mk_size != 32) return InvalidArgument(nc.master_key_file.string() + ": not a 32-byte key");
  QV_RETURN_IF_ERROR(mk_file->PReadExact(master.mutable_span(), 0));
  mk_file.reset();

  QV_ASSIGN_OR_RETURN(auto store,
                      NodeStore::Open(nc.data_dir, std::move(master), nc.id, cluster.coordinator));
  NodeService service(store.get(), cluster, nc.id, nullptr);
  service.Log("event=config-load cluster=" + cluster.name +
              " nodes=" + std::to_string(cluster.nodes.size()) +
              " cleaned_interrupted_uploads=" + std::to_string(store->cleaned_on_open()));
  ServerOptions opt;
  opt.host = self->host;
  opt.port = self->port;
  opt.handshake_timeout = std::chrono::milliseconds(nc.handshake_timeout_ms);
  opt.idle_timeout = std::chrono::milliseconds(nc.idle_timeout_ms);
  QV_ASSIGN_OR_RETURN(auto server, NodeServer::New(&service, key.get(), opt));
  const fs::path pid_file = node_config.parent_path() / "node.pid";
  QV_RETURN_IF_ERROR(WriteFileAtomic(pid_file, AsBytes(std::to_string(::getpid()) + "\n"), 0644));
  service.Log("event=start listen=" + self->host + ":" + std::to_string(server->port()) +
              " pid=" + std::to_string(::getpid()));
  Status s = server->Run(/*handle_signals=*/true);
  service.Log("event=stop");
  std::error_code ec;
  fs::remove(pid_file, ec);
  return s;
}

}  // namespace qv
