#include "configs/local_cluster.h"

#include <cstdio>

#include "base/file_util.h"

namespace qv {

namespace fs = std::filesystem;

fs::path NodeConfigPath(const fs::path& dir, const std::string& node_id) {
  return dir / "nodes" / node_id / "node.toml";
}

namespace {

Result<PublicKey> NewKey(const fs::path& path) {
  QV_ASSIGN_OR_RETURN(auto key, SigningKey::Generate());
  QV_RETURN_IF_ERROR(key->Save(path));
  return key->public_key();
}

}  // namespace

Result<NodeEntry> InitLocalNode(const fs::path& dir, const std::string& id, const std::string& site,
                                const std::string& host, uint16_t port) {
  if (id.empty() || id.size() > 64 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
          std::string::npos ||
      id[0] == '.') {
    return InvalidArgument("--id: 1..64 letters, digits, '-', '_' or '.', not starting with '.'");
  }
  if (site.empty() || site.find(' ') != std::string::npos || host.empty() ||
      host.find(' ') != std::string::npos || port == 0) {
    return InvalidArgument("a node needs a site and a host without spaces, and a port");
  }
  const fs::path nd = dir / "nodes" / id;
  std::error_code ec;
  if (fs::exists(nd, ec)) return AlreadyExists(nd.string() + " already exists");
  fs::create_directories(nd / "data", ec);
  if (ec) return IoError(nd.string() + ": " + ec.message());
  NodeEntry e{id, site, host, port, {}};
  QV_ASSIGN_OR_RETURN(e.public_key, NewKey(nd / "node.key"));
  SecretBytes master = SecretBytes::Random(32);
  QV_RETURN_IF_ERROR(WriteFileAtomic(nd / "master.key", master.span(), 0600));
  const NodeConfig nf{id, "data", "node.key", "master.key", "../../cluster.toml"};
  QV_RETURN_IF_ERROR(WriteFileAtomic(NodeConfigPath(dir, id), AsBytes(nf.ToToml()), 0644));
  return e;
}

Result<ClusterConfig> InitLocalCluster(const fs::path& dir, const LocalClusterOptions& o) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return AlreadyExists(dir.string() + ": exists and is not empty");
  }
  if (o.sites < 2)
    return InvalidArgument("--sites: at least 2 sites (losing one must be survivable)");
  if (o.nodes_per_site < 1) return InvalidArgument("--nodes-per-site: at least 1");
  const uint32_t placed = o.sites * o.nodes_per_site;
  if (o.spares > 255) return InvalidArgument("--spares: at most 255");
  const uint32_t n = placed + o.spares;
  if (n > 255) return InvalidArgument("at most 255 nodes");
  if (o.base_port < 1024 || o.base_port + n > 65535) {
    return InvalidArgument("--base-port: ports " + std::to_string(o.base_port) + ".." +
                           std::to_string(o.base_port + n - 1) + " must lie in 1024..65535");
  }
  ClusterConfig c;
  c.name = fs::absolute(dir).filename().string();
  c.m = o.m ? o.m : o.nodes_per_site;
  c.k = o.k ? o.k : placed - c.m;
  c.t = o.t ? o.t : std::min(o.nodes_per_site + 1, placed - o.nodes_per_site);
  c.quorum = o.quorum;
  if (o.quorum == 0 && o.custodians > 0) {
    return InvalidArgument("--quorum 0: at least one custodian must approve a restore");
  }
  if (o.custodians < o.quorum) {
    return InvalidArgument("--quorum " + std::to_string(o.quorum) + " exceeds --custodians " +
                           std::to_string(o.custodians));
  }
  fs::create_directories(dir / "custodians", ec);
  fs::create_directories(dir / "nodes", ec);
  if (ec) return IoError(dir.string() + ": " + ec.message());
  QV_ASSIGN_OR_RETURN(c.coordinator, NewKey(dir / "coordinator.key"));
  for (uint32_t s = 0; s < o.sites; ++s)
    c.sites.push_back("site-" + std::string(1, char('a' + s % 26)) +
                      (s >= 26 ? std::to_string(s / 26) : ""));
  if (o.spares > 0) c.sites.push_back("site-spare");
  std::vector<NodeConfig> node_files;
  for (uint32_t i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "node-%02u", i);
    fs::path nd = dir / "nodes" / id;
    fs::create_directories(nd / "data", ec);
    if (ec) return IoError(nd.string() + ": " + ec.message());
    NodeEntry e;
    e.id = id;
    e.site = i < placed ? c.sites[i / o.nodes_per_site] : c.sites.back();
    e.host = o.host;
    e.port = static_cast<uint16_t>(o.base_port + i);
    QV_ASSIGN_OR_RETURN(e.public_key, NewKey(nd / "node.key"));
    SecretBytes master = SecretBytes::Random(32);
    QV_RETURN_IF_ERROR(WriteFileAtomic(nd / "master.key", master.span(), 0600));
    c.nodes.push_back(e);
    node_files.push_back(NodeConfig{id, "data", "node.key", "master.key", "../../cluster.toml"});
  }
  for (uint32_t i = 1; i <= o.custodians; ++i) {
    Principal p{"c" + std::to_string(i), {}};
    QV_ASSIGN_OR_RETURN(p.public_key, NewKey(dir / "custodians" / (p.id + ".key")));
    c.custodians.push_back(p);
  }
  Principal op{"operator", {}};
  QV_ASSIGN_OR_RETURN(op.public_key, NewKey(dir / "operator.key"));
  c.requesters.push_back(op);
  QV_RETURN_IF_ERROR(c.Validate(dir.string() + "/cluster.toml"));
  QV_RETURN_IF_ERROR(WriteFileAtomic(dir / "cluster.toml", AsBytes(c.ToToml()), 0644));
  for (const auto& nf : node_files) {
    QV_RETURN_IF_ERROR(WriteFileAtomic(NodeConfigPath(dir, nf.id), AsBytes(nf.ToToml()), 0644));
  }
  return c;
}

}  // namespace qv
