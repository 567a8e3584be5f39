// Cluster and node configuration files (TOML).
//
// A cluster file names the sites, the nodes (id, site, host, port, Ed25519
// public key), the coordinator's public key, the custodians and requesters
// (id, public key, optional channel key) and the defaults k, m, t and
// quorum. A node file names the
// node's id, data folder, secret key file, master key file and cluster file.
// Loading is strict: an unknown key, a missing or malformed field, a
// duplicate node id or port, k + m different from the node count, t > n or
// bad key text is an error naming the file, the field and the reason.
// Loaded configs are immutable values.
#ifndef QV_CONFIGS_CLUSTER_CONFIG_H_
#define QV_CONFIGS_CLUSTER_CONFIG_H_

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/identity.h"

namespace qv {

struct NodeEntry {
  std::string id;
  std::string site;
  std::string host;
  uint16_t port = 0;
  PublicKey public_key{};
};

struct Principal {  // a custodian or requester
  std::string id;
  PublicKey public_key{};  // signs requests and approvals
  // Optional (issue 16): the key the principal proves on the Noise channel
  // when its signing key is in a hardware token (crypto/pkcs11.h), which
  // cannot do X25519. Without it, the signing key's X25519 form is used.
  std::optional<PublicKey> channel_key = {};

  const PublicKey& channel() const { return channel_key ? *channel_key : public_key; }
};

// The largest enrollment certificate a cluster file may carry.
inline constexpr size_t kMaxEnrollmentBytes = 64 * 1024;

struct ClusterConfig {
  std::string name;
  PublicKey coordinator{};
  std::vector<std::string> sites;
  std::vector<NodeEntry> nodes;  // fragment f goes to nodes[f]
  std::vector<Principal> custodians;
  std::vector<Principal> requesters;
  uint32_t k = 4, m = 2, t = 3, quorum = 3;
  // Longest lifetime a restore request may have (optional, default 24 h).
  uint32_t max_request_seconds = 86400;
  // Certificates that enrolled nodes after the first membership, in order
  // ([[enrollments]] certificate = "hex"); checked by quorum/enrollment.h,
  // not here.
  std::vector<Bytes> enrollments;

  const NodeEntry* FindNode(std::string_view id) const;
  // The node whose key this is, if any.
  const NodeEntry* FindNodeByKey(const PublicKey& key) const;
  std::string ToToml() const;

  static Result<ClusterConfig> Load(const std::filesystem::path& path);
  static Result<ClusterConfig> Parse(std::string_view toml, const std::string& source);
  Status Validate(const std::string& source) const;
};

struct NodeConfig {
  std::string id;
  std::filesystem::path data_dir;
  std::filesystem::path key_file;         // the node's Ed25519 identity
  std::filesystem::path master_key_file;  // seals shares at rest
  std::filesystem::path cluster_file;
  // Optional (issue 16): a PKCS#11 URI (RFC 7512) of an AES key in a token;
  // master_key_file then holds the master key wrapped by it
  // (crypto/pkcs11.h), and the node needs the token (PIN from the URI or
  // QV_PKCS11_PIN) to start.
  std::string master_key_pkcs11 = {};
  // Optional: how long a peer may take to finish the handshake, and how long
  // a connection may sit idle, before the node drops it.
  uint32_t handshake_timeout_ms = 10000;
  uint32_t idle_timeout_ms = 120000;
  // Optional: how long a whole message may take from its first byte; how
  // many connections may be unauthenticated at once, in all and per source
  // address (more are closed as soon as they are accepted).
  uint32_t message_timeout_ms = 30000;
  uint32_t max_unauthenticated_connections = 512;
  uint32_t max_unauthenticated_per_address = 64;
  // Optional: clock skew tolerated on request times; how many audit entries
  // between signed checkpoints; how often to witness the other nodes' logs;
  // how often to settle backups still waiting for their commit record (ask
  // the peers for it, abort past the deadline) and log refusal counts.
  uint32_t clock_skew_seconds = 300;
  uint32_t checkpoint_every = 16;
  uint32_t witness_interval_ms = 10000;
  uint32_t settle_interval_ms = 10000;
  // Optional: the most entries and time one witness round spends on one
  // peer (a longer catch-up resumes next round).
  uint32_t witness_max_entries = 65536;
  uint32_t witness_max_ms = 10000;
  // Optional: how often the node scrubs its own disk (0: never), and the
  // share of each fragment's units it reads each time, in thousandths
  // (issue 15). Findings are logged and audited as alerts.
  uint32_t self_scrub_interval_s = 3600;
  uint32_t self_scrub_permille = 10;
  // Optional: a program run (no shell) for each restore request newly
  // submitted to this node, as PROGRAM REQUEST_ID SUMMARY, e.g. to send
  // mail (issue 16). Never given secrets. Killed after 30 s; at most 8 run
  // at once (more are skipped and logged).
  std::filesystem::path on_pending_command = {};
  // Optional: where to write Prometheus text-format metrics (atomically,
  // for node_exporter's textfile collector), and how often.
  std::filesystem::path metrics_file = {};
  uint32_t metrics_interval_s = 15;
  // Optional: the PKCS#11 module for master_key_pkcs11 when its URI names
  // none (module-path); else QV_PKCS11_MODULE, else SoftHSM2's.
  std::filesystem::path pkcs11_module = {};

  std::string ToToml() const;
  // Relative paths resolve against the node file's folder.
  static Result<NodeConfig> Load(const std::filesystem::path& path);
};

}  // namespace qv

#endif  // QV_CONFIGS_CLUSTER_CONFIG_H_
