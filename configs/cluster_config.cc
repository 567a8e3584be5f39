#include "configs/cluster_config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace qv {

namespace fs = std::filesystem;

namespace {

// Builds "FILE: field: reason" errors.
Status Bad(const std::string& source, const std::string& field, const std::string& why) {
  return InvalidArgument(source + ": " + field + ": " + why);
}

Status OnlyKeys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                const std::string& source, const std::string& where) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto a : allowed) ok = ok || k.str() == a;
    if (!ok) {
      return Bad(source, where.empty() ? std::string(k.str()) : where + "." + std::string(k.str()),
                 "unknown key");
    }
  }
  return Status::Ok();
}

Result<std::string> Str(const toml::table& t, std::string_view key, const std::string& source,
                        const std::string& where) {
  auto v = t[key].value<std::string>();
  if (!v || v->empty())
    return Bad(source, where + "." + std::string(key), "missing or not a string");
  return *v;
}

Result<int64_t> Int(const toml::table& t, std::string_view key, const std::string& source,
                    const std::string& where, int64_t lo, int64_t hi) {
  auto v = t[key].value<int64_t>();
  if (!v) return Bad(source, where + "." + std::string(key), "missing or not an integer");
  if (*v < lo || *v > hi) {
    return Bad(
        source, where + "." + std::string(key),
        std::to_string(*v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return *v;
}

// An optional integer key: left at its default when absent, range-checked
// like Int when present.
Status OptionalUInt(const toml::table& t, std::string_view key, const std::string& source,
                    const std::string& where, int64_t lo, int64_t hi, uint32_t* out) {
  if (!t.contains(key)) return Status::Ok();
  QV_ASSIGN_OR_RETURN(int64_t v, Int(t, key, source, where, lo, hi));
  *out = static_cast<uint32_t>(v);
  return Status::Ok();
}

Result<PublicKey> Key(const toml::table& t, std::string_view key, const std::string& source,
                      const std::string& where) {
  QV_ASSIGN_OR_RETURN(std::string text, Str(t, key, source, where));
  auto pk = PublicKeyFromText(text);
  if (!pk.ok()) return Bad(source, where + "." + std::string(key), pk.status().message());
  return *pk;
}

Result<std::vector<Principal>> Principals(const toml::table& root, std::string_view key,
                                          const std::string& source) {
  std::vector<Principal> out;
  const toml::array* arr = root[key].as_array();
  if (arr == nullptr) return out;
  for (size_t i = 0; i < arr->size(); ++i) {
    const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    const toml::table* t = (*arr)[i].as_table();
    if (t == nullptr) return Bad(source, where, "not a table");
    QV_RETURN_IF_ERROR(OnlyKeys(*t, {"id", "public_key", "channel_key"}, source, where));
    Principal p;
    QV_ASSIGN_OR_RETURN(p.id, Str(*t, "id", source, where));
    QV_ASSIGN_OR_RETURN(p.public_key, Key(*t, "public_key", source, where));
    if (t->contains("channel_key")) {
      QV_ASSIGN_OR_RETURN(p.channel_key, Key(*t, "channel_key", source, where));
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::string> ReadText(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound(path.string() + ": no such file");
  std::ifstream in(path);
  if (!in) return IoError(path.string() + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

const NodeEntry* ClusterConfig::FindNode(std::string_view id) const {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

const NodeEntry* ClusterConfig::FindNodeByKey(const PublicKey& key) const {
  for (const auto& n : nodes) {
    if (n.public_key == key) return &n;
  }
  return nullptr;
}

Result<ClusterConfig> ClusterConfig::Parse(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return InvalidArgument(os.str());
  }
  QV_RETURN_IF_ERROR(OnlyKeys(
      root, {"cluster", "sites", "nodes", "custodians", "requesters", "enrollments"}, source, ""));
  ClusterConfig c;
  const toml::table* cl = root["cluster"].as_table();
  if (cl == nullptr) return Bad(source, "cluster", "missing [cluster] table");
  QV_RETURN_IF_ERROR(
      OnlyKeys(*cl, {"name", "coordinator", "k", "m", "t", "quorum", "max_request_seconds"}, source,
               "cluster"));
  QV_ASSIGN_OR_RETURN(c.name, Str(*cl, "name", source, "cluster"));
  QV_ASSIGN_OR_RETURN(c.coordinator, Key(*cl, "coordinator", source, "cluster"));
  QV_ASSIGN_OR_RETURN(int64_t k, Int(*cl, "k", source, "cluster", 1, 254));
  QV_ASSIGN_OR_RETURN(int64_t m, Int(*cl, "m", source, "cluster", 0, 254));
  QV_ASSIGN_OR_RETURN(int64_t t, Int(*cl, "t", source, "cluster", 1, 255));
  QV_ASSIGN_OR_RETURN(int64_t q, Int(*cl, "quorum", source, "cluster", 1, 255));
  c.k = static_cast<uint32_t>(k);
  c.m = static_cast<uint32_t>(m);
  c.t = static_cast<uint32_t>(t);
  c.quorum = static_cast<uint32_t>(q);
  QV_RETURN_IF_ERROR(OptionalUInt(*cl, "max_request_seconds", source, "cluster", 60, 30 * 86400,
                                  &c.max_request_seconds));

  const toml::array* sites = root["sites"].as_array();
  if (sites == nullptr) return Bad(source, "sites", "missing list of site names");
  for (size_t i = 0; i < sites->size(); ++i) {
    auto s = (*sites)[i].value<std::string>();
    if (!s || s->empty()) return Bad(source, "sites[" + std::to_string(i) + "]", "not a name");
    c.sites.push_back(*s);
  }
  const toml::array* nodes = root["nodes"].as_array();
  if (nodes == nullptr) return Bad(source, "nodes", "missing [[nodes]]");
  for (size_t i = 0; i < nodes->size(); ++i) {
    const std::string where = "nodes[" + std::to_string(i) + "]";
    const toml::table* t2 = (*nodes)[i].as_table();
    if (t2 == nullptr) return Bad(source, where, "not a table");
    QV_RETURN_IF_ERROR(OnlyKeys(*t2, {"id", "site", "host", "port", "public_key"}, source, where));
    NodeEntry n;
    QV_ASSIGN_OR_RETURN(n.id, Str(*t2, "id", source, where));
    QV_ASSIGN_OR_RETURN(n.site, Str(*t2, "site", source, where));
    QV_ASSIGN_OR_RETURN(n.host, Str(*t2, "host", source, where));
    QV_ASSIGN_OR_RETURN(int64_t port, Int(*t2, "port", source, where, 1, 65535));
    n.port = static_cast<uint16_t>(port);
    QV_ASSIGN_OR_RETURN(n.public_key, Key(*t2, "public_key", source, where));
    c.nodes.push_back(std::move(n));
  }
  QV_ASSIGN_OR_RETURN(c.custodians, Principals(root, "custodians", source));
  QV_ASSIGN_OR_RETURN(c.requesters, Principals(root, "requesters", source));
  if (const toml::node* e = root.get("enrollments"); e != nullptr) {
    const toml::array* arr = e->as_array();
    if (arr == nullptr) return Bad(source, "enrollments", "not a list of tables");
    if (arr->size() > 255) return Bad(source, "enrollments", "more than 255");
    for (size_t i = 0; i < arr->size(); ++i) {
      const std::string where = "enrollments[" + std::to_string(i) + "]";
      const toml::table* t2 = (*arr)[i].as_table();
      if (t2 == nullptr) return Bad(source, where, "not a table");
      QV_RETURN_IF_ERROR(OnlyKeys(*t2, {"certificate"}, source, where));
      QV_ASSIGN_OR_RETURN(std::string hex, Str(*t2, "certificate", source, where));
      if (hex.size() > 2 * kMaxEnrollmentBytes) {
        return Bad(source, where + ".certificate",
                   "longer than " + std::to_string(kMaxEnrollmentBytes) + " bytes");
      }
      auto bytes = HexDecode(hex);
      if (!bytes.ok()) return Bad(source, where + ".certificate", bytes.status().message());
      c.enrollments.push_back(std::move(*bytes));
    }
  }
  QV_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

Status ClusterConfig::Validate(const std::string& source) const {
  std::set<std::string> site_set(sites.begin(), sites.end());
  if (site_set.size() != sites.size()) return Bad(source, "sites", "duplicate site name");
  std::set<std::string> ids;
  std::set<std::pair<std::string, uint16_t>> endpoints;
  std::set<PublicKey> keys = {coordinator};
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    const std::string where = "nodes[" + std::to_string(i) + "]";
    if (!ids.insert(n.id).second) return Bad(source, where + ".id", "duplicate node id " + n.id);
    if (!endpoints.insert({n.host, n.port}).second) {
      return Bad(source, where + ".port",
                 "duplicate address " + n.host + ":" + std::to_string(n.port));
    }
    if (!site_set.count(n.site)) return Bad(source, where + ".site", "unknown site " + n.site);
    if (!keys.insert(n.public_key).second) {
      return Bad(source, where + ".public_key", "key already used by another party");
    }
  }
  // Backups go on the first k + m nodes; any listed after them are spares
  // that repairs rebuild fragments onto (coordinator/repair.h).
  if (k + m > nodes.size()) {
    return Bad(source, "cluster.k",
               "k + m = " + std::to_string(k + m) + " but the cluster has " +
                   std::to_string(nodes.size()) + " nodes");
  }
  if (t > nodes.size()) {
    return Bad(
        source, "cluster.t",
        "threshold " + std::to_string(t) + " exceeds " + std::to_string(nodes.size()) + " nodes");
  }
  // One key, one party: a custodian key listed twice would let one person
  // count as two approvals, and a key shared between roles would let a
  // requester or a node approve.
  std::set<std::string> principal_ids;
  for (const auto* list : {&custodians, &requesters}) {
    const std::string field = list == &custodians ? "custodians" : "requesters";
    for (const auto& p : *list) {
      if (!principal_ids.insert(p.id).second) return Bad(source, field, "duplicate id " + p.id);
      if (!keys.insert(p.public_key).second) {
        return Bad(source, field, p.id + "'s key is already used by another party");
      }
      if (p.channel_key && !keys.insert(*p.channel_key).second) {
        return Bad(source, field, p.id + "'s channel key is already used by another party");
      }
    }
  }
  if (!custodians.empty() && quorum == 0) {
    return Bad(source, "cluster.quorum", "quorum 0: at least one custodian must approve");
  }
  if (!custodians.empty() && quorum > custodians.size()) {
    return Bad(source, "cluster.quorum",
               "quorum " + std::to_string(quorum) + " exceeds " +
                   std::to_string(custodians.size()) + " custodians");
  }
  return Status::Ok();
}

Result<ClusterConfig> ClusterConfig::Load(const fs::path& path) {
  if (path.empty()) {
    return InvalidArgument(
        "no cluster file: give --cluster FILE (or the folder qv cluster init made), set "
        "QV_CLUSTER, or run where cluster.toml is");
  }
  QV_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  return Parse(text, path.string());
}

namespace {

// A TOML basic string (TOML 1.0, "Basic strings"): quotes, backslashes and
// every control character escaped, so no name can end the string or add a
// key. Hand-written because toml++'s serializer formats differently between
// its header-only and compiled builds (quotes, key order), and these files
// are read and diffed by people.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string ClusterConfig::ToToml() const {
  std::ostringstream o;
  o << "# quorumvault cluster file: every party's public key, pinned.\n";
  o << "sites = [";
  for (size_t i = 0; i < sites.size(); ++i) o << (i ? ", " : "") << Quoted(sites[i]);
  o << "]\n\n";
  o << "[cluster]\nname = " << Quoted(name) << "\ncoordinator = \"" << PublicKeyToText(coordinator)
    << "\"\nk = " << k << "\nm = " << m << "\nt = " << t << "\nquorum = " << quorum
    << "\nmax_request_seconds = " << max_request_seconds << "\n";
  for (const auto& n : nodes) {
    o << "\n[[nodes]]\nid = " << Quoted(n.id) << "\nsite = " << Quoted(n.site)
      << "\nhost = " << Quoted(n.host) << "\nport = " << n.port << "\npublic_key = \""
      << PublicKeyToText(n.public_key) << "\"\n";
  }
  auto principal = [&](const char* table, const Principal& p) {
    o << "\n[[" << table << "]]\nid = " << Quoted(p.id) << "\npublic_key = \""
      << PublicKeyToText(p.public_key) << "\"\n";
    if (p.channel_key) o << "channel_key = \"" << PublicKeyToText(*p.channel_key) << "\"\n";
  };
  for (const auto& c : custodians) principal("custodians", c);
  for (const auto& r : requesters) principal("requesters", r);
  if (!enrollments.empty()) {
    o << "\n# Each node after the first membership, enrolled by a quorum of custodians:\n"
         "# the certificate every node checks before it pins the node's key.\n";
  }
  for (const auto& e : enrollments) {
    o << "\n[[enrollments]]\ncertificate = \"" << HexEncode(e) << "\"\n";
  }
  return o.str();
}

std::string NodeConfig::ToToml() const {
  std::ostringstream o;
  o << "[node]\nid = " << Quoted(id) << "\ndata_dir = " << Quoted(data_dir.string())
    << "\nkey_file = " << Quoted(key_file.string())
    << "\nmaster_key_file = " << Quoted(master_key_file.string())
    << "\ncluster_file = " << Quoted(cluster_file.string())
    << "\nclock_skew_seconds = " << clock_skew_seconds
    << "\ncheckpoint_every = " << checkpoint_every
    << "\nwitness_interval_ms = " << witness_interval_ms
    << "\nsettle_interval_ms = " << settle_interval_ms
    << "\nwitness_max_entries = " << witness_max_entries << "\nwitness_max_ms = " << witness_max_ms
    << "\nself_scrub_interval_s = " << self_scrub_interval_s
    << "\nself_scrub_permille = " << self_scrub_permille
    << "\nhandshake_timeout_ms = " << handshake_timeout_ms
    << "\nidle_timeout_ms = " << idle_timeout_ms << "\nmessage_timeout_ms = " << message_timeout_ms
    << "\nmax_unauthenticated_connections = " << max_unauthenticated_connections
    << "\nmax_unauthenticated_per_address = " << max_unauthenticated_per_address << "\n";
  if (!on_pending_command.empty()) {
    o << "on_pending_command = " << Quoted(on_pending_command.string()) << "\n";
  }
  if (!master_key_pkcs11.empty()) o << "master_key_pkcs11 = " << Quoted(master_key_pkcs11) << "\n";
  if (!pkcs11_module.empty()) o << "pkcs11_module = " << Quoted(pkcs11_module.string()) << "\n";
  if (!metrics_file.empty()) {
    o << "metrics_file = " << Quoted(metrics_file.string())
      << "\nmetrics_interval_s = " << metrics_interval_s << "\n";
  }
  return o.str();
}

Result<NodeConfig> NodeConfig::Load(const fs::path& path) {
  QV_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  const std::string source = path.string();
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ": " << e.description();
    return InvalidArgument(os.str());
  }
  QV_RETURN_IF_ERROR(OnlyKeys(root, {"node"}, source, ""));
  const toml::table* n = root["node"].as_table();
  if (n == nullptr) return Bad(source, "node", "missing [node] table");
  QV_RETURN_IF_ERROR(OnlyKeys(*n,
                              {"id",
                               "data_dir",
                               "key_file",
                               "master_key_file",
                               "cluster_file",
                               "handshake_timeout_ms",
                               "idle_timeout_ms",
                               "clock_skew_seconds",
                               "checkpoint_every",
                               "witness_interval_ms",
                               "settle_interval_ms",
                               "witness_max_entries",
                               "witness_max_ms",
                               "message_timeout_ms",
                               "max_unauthenticated_connections",
                               "max_unauthenticated_per_address",
                               "self_scrub_interval_s",
                               "self_scrub_permille",
                               "on_pending_command",
                               "metrics_file",
                               "metrics_interval_s",
                               "master_key_pkcs11",
                               "pkcs11_module"},
                              source, "node"));
  NodeConfig c;
  const fs::path base = path.has_parent_path() ? path.parent_path() : fs::path(".");
  auto resolve = [&](const std::string& p) {
    return fs::path(p).is_absolute() ? fs::path(p) : base / p;
  };
  QV_ASSIGN_OR_RETURN(c.id, Str(*n, "id", source, "node"));
  QV_ASSIGN_OR_RETURN(std::string data, Str(*n, "data_dir", source, "node"));
  QV_ASSIGN_OR_RETURN(std::string key, Str(*n, "key_file", source, "node"));
  QV_ASSIGN_OR_RETURN(std::string master, Str(*n, "master_key_file", source, "node"));
  QV_ASSIGN_OR_RETURN(std::string cluster, Str(*n, "cluster_file", source, "node"));
  c.data_dir = resolve(data);
  c.key_file = resolve(key);
  c.master_key_file = resolve(master);
  c.cluster_file = resolve(cluster);
  QV_RETURN_IF_ERROR(OptionalUInt(*n, "handshake_timeout_ms", source, "node", 100, 600000,
                                  &c.handshake_timeout_ms));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "idle_timeout_ms", source, "node", 100, 86400000, &c.idle_timeout_ms));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "message_timeout_ms", source, "node", 100, 3600000, &c.message_timeout_ms));
  QV_RETURN_IF_ERROR(OptionalUInt(*n, "max_unauthenticated_connections", source, "node", 1, 100000,
                                  &c.max_unauthenticated_connections));
  QV_RETURN_IF_ERROR(OptionalUInt(*n, "max_unauthenticated_per_address", source, "node", 1, 100000,
                                  &c.max_unauthenticated_per_address));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "clock_skew_seconds", source, "node", 0, 3600, &c.clock_skew_seconds));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "checkpoint_every", source, "node", 1, 100000, &c.checkpoint_every));
  QV_RETURN_IF_ERROR(OptionalUInt(*n, "witness_interval_ms", source, "node", 50, 86400000,
                                  &c.witness_interval_ms));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "settle_interval_ms", source, "node", 50, 3600000, &c.settle_interval_ms));
  QV_RETURN_IF_ERROR(OptionalUInt(*n, "witness_max_entries", source, "node", 1024, 16777216,
                                  &c.witness_max_entries));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "witness_max_ms", source, "node", 100, 600000, &c.witness_max_ms));
  QV_RETURN_IF_ERROR(OptionalUInt(*n, "self_scrub_interval_s", source, "node", 0, 7 * 86400,
                                  &c.self_scrub_interval_s));
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "self_scrub_permille", source, "node", 1, 1000, &c.self_scrub_permille));
  std::error_code ec;
  if (n->contains("master_key_pkcs11")) {
    QV_ASSIGN_OR_RETURN(c.master_key_pkcs11, Str(*n, "master_key_pkcs11", source, "node"));
    if (c.master_key_pkcs11.rfind("pkcs11:", 0) != 0) {
      return Bad(source, "node.master_key_pkcs11", "not a pkcs11: URI");
    }
  }
  if (n->contains("pkcs11_module")) {
    QV_ASSIGN_OR_RETURN(std::string m, Str(*n, "pkcs11_module", source, "node"));
    c.pkcs11_module = resolve(m);
    if (::access(c.pkcs11_module.c_str(), R_OK) != 0) {
      return Bad(source, "node.pkcs11_module",
                 c.pkcs11_module.string() + " is not a readable PKCS#11 module");
    }
  }
  if (n->contains("metrics_file")) {
    QV_ASSIGN_OR_RETURN(std::string f, Str(*n, "metrics_file", source, "node"));
    c.metrics_file = resolve(f);
  }
  QV_RETURN_IF_ERROR(
      OptionalUInt(*n, "metrics_interval_s", source, "node", 1, 3600, &c.metrics_interval_s));
  if (n->contains("on_pending_command")) {
    QV_ASSIGN_OR_RETURN(std::string cmd, Str(*n, "on_pending_command", source, "node"));
    c.on_pending_command = resolve(cmd);
    if (::access(c.on_pending_command.c_str(), X_OK) != 0) {
      return Bad(source, "node.on_pending_command",
                 c.on_pending_command.string() + " is not an executable program");
    }
  }
  for (const auto& [field, p] :
       std::vector<std::pair<std::string, fs::path>>{{"node.key_file", c.key_file},
                                                     {"node.master_key_file", c.master_key_file},
                                                     {"node.cluster_file", c.cluster_file}}) {
    if (!fs::exists(p, ec)) return Bad(source, field, p.string() + " does not exist");
  }
  return c;
}

}  // namespace qv
