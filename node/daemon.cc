#include "node/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/file_util.h"
#include "configs/cluster_config.h"
#include "node/audit_log.h"
#include "node/node_client.h"
#include "node/node_service.h"
#include "node/server.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

// Periodically checks every other node's newest signed checkpoint: its
// signature under the pinned key and, when an older one was witnessed, that
// the entries between link the old head to the new one. Checked
// checkpoints are countersigned and kept; a mismatch is audited as an
// alert and not countersigned. Successes are not audited, or witnessing
// would itself keep growing every log.
class Witness {
 public:
  Witness(NodeService* service, AuditLog* audit, const ClusterConfig* cluster,
          const SigningKey* key, uint32_t interval_ms)
      : service_(service), audit_(audit), cluster_(cluster), key_(key), interval_(interval_ms) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Witness() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(interval_), [&] { return stop_; })) {
      lock.unlock();
      service_->FlushRefusals();
      service_->Settle([this](const NodeEntry& n, const Request& r) -> Result<Response> {
        ClientOptions co;
        co.connect_timeout = std::chrono::milliseconds(1000);
        co.io_timeout = std::chrono::milliseconds(5000);
        QV_ASSIGN_OR_RETURN(auto client, NodeClient::Connect(n, *key_, co));
        return client->Call(r);
      });
      for (const auto& n : cluster_->nodes) {
        if (n.id == audit_->node_id()) continue;
        Status st = WitnessOne(n);
        // A mismatch persists until someone acts on it: alert when it first
        // appears or changes, not on every round, so the log does not fill.
        std::string& last = alerted_[n.id];
        if (st.code() == StatusCode::kCorruption && st.message() != last) {
          service_->Log("event=witness-mismatch subject=" + n.id + " detail=\"" + st.message() +
                        "\"");
          service_->Audit({"alert", n.id, "", "", "witness: " + st.message()});
        }
        if (st.code() == StatusCode::kCorruption || st.ok()) {
          last = st.ok() ? "" : st.message();
        }
      }
      lock.lock();
    }
  }

  Status WitnessOne(const NodeEntry& n) {
    ClientOptions co;
    co.connect_timeout = std::chrono::milliseconds(1000);
    co.io_timeout = std::chrono::milliseconds(5000);
    QV_ASSIGN_OR_RETURN(auto client, NodeClient::Connect(n, *key_, co));
    Request r;
    r.op = Op::kGetCheckpoints;
    QV_ASSIGN_OR_RETURN(Response resp, CallChecked(*client, r));
    QV_ASSIGN_OR_RETURN(auto cps, DecodeCheckpoints(resp.payload));
    if (cps.empty()) return Status::Ok();
    const Checkpoint& latest = cps.back();
    if (latest.node_id != n.id || !latest.Verify(n.public_key).ok()) {
      return Corruption("newest checkpoint does not verify under " + n.id + "'s pinned key");
    }
    auto prev = audit_->LastWitnessed(n.id);
    if (prev && latest.seq < prev->seq) {
      return Corruption("log shrank: witnessed entry " + std::to_string(prev->seq) +
                        ", now newest checkpoint is at " + std::to_string(latest.seq));
    }
    if (prev && latest.seq == prev->seq) {
      if (latest.head != prev->head) return Corruption("checkpoint at the same entry changed");
      return Status::Ok();
    }
    if (prev) {
      // The entries since the last witnessed head must lead to the new head.
      ChainHash head = prev->head;
      uint64_t next = prev->seq + 1;
      while (next <= latest.seq) {
        Request g;
        g.op = Op::kGetAudit;
        g.a = next;
        g.b = std::min<uint64_t>(latest.seq - next + 1, 1024);
        QV_ASSIGN_OR_RETURN(Response page, CallChecked(*client, g));
        QV_ASSIGN_OR_RETURN(auto entries, DecodeEntries(page.payload));
        if (entries.empty()) return Corruption("entries before the newest checkpoint are gone");
        for (const auto& e : entries) {
          if (e.seq != next || e.prev != head || e.ComputeHash() != e.hash) {
            return Corruption("entry " + std::to_string(next) +
                              " does not extend the history witnessed at entry " +
                              std::to_string(prev->seq));
          }
          head = e.hash;
          ++next;
          if (next > latest.seq) break;
        }
      }
      if (head != latest.head) return Corruption("newest checkpoint does not match the entries");
    }
    WitnessRecord rec{audit_->node_id(), latest, {}};
    rec.countersignature = key_->Sign(rec.SignedBytes());
    return audit_->RecordWitness(rec);
  }

  NodeService* service_;
  AuditLog* audit_;
  const ClusterConfig* cluster_;
  const SigningKey* key_;
  uint32_t interval_;
  std::map<std::string, std::string> alerted_;  // subject -> current mismatch; loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

Status RunNodeDaemon(const fs::path& node_config) {
  // Everything the node creates (databases, fragments, manifests, the
  // audit trail, the folders that hold them) is its own alone.
  ::umask(077);
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
  QV_ASSIGN_OR_RETURN(SecretBytes master, ReadSecretFile(nc.master_key_file, 32));

  std::error_code ec;
  fs::create_directories(nc.data_dir, ec);
  if (::chmod(nc.data_dir.c_str(), 0700) != 0) return ErrnoError("chmod " + nc.data_dir.string());
  QV_ASSIGN_OR_RETURN(auto audit, AuditLog::Open(nc.data_dir / "audit.db", nc.id, key.get(),
                                                 SystemClock::Default(), nc.checkpoint_every));
  // A metadata database that is gone is rebuilt: from the backup folders'
  // signed manifests and from what the audit log remembers.
  NodeStore::RecoveryHints hints;
  const bool rebuild = !fs::exists(nc.data_dir / "meta.db", ec);
  if (rebuild) {
    QV_ASSIGN_OR_RETURN(auto stored, audit->BackupsStored());
    for (const auto& id : stored) {
      if (auto b = BackupIdFromText(id); b.ok()) hints.published.insert(*b);
    }
    QV_ASSIGN_OR_RETURN(auto released, audit->RequestsReleased());
    for (const auto& [request, backup] : released) {
      if (auto b = BackupIdFromText(backup); b.ok()) hints.spent.emplace_back(request, *b);
    }
  }
  QV_ASSIGN_OR_RETURN(auto store, NodeStore::Open(nc.data_dir, std::move(master), nc.id,
                                                  cluster.coordinator, rebuild ? &hints : nullptr));
  NodeServiceOptions so;
  so.audit = audit.get();
  so.max_skew = nc.clock_skew_seconds;
  so.identity = key.get();
  NodeService service(store.get(), cluster, nc.id, nullptr, so);
  const std::string loaded =
      "cluster=" + cluster.name + " nodes=" + std::to_string(cluster.nodes.size()) +
      " cleaned_interrupted_uploads=" + std::to_string(store->cleaned_on_open());
  service.Log("event=config-load " + loaded);
  for (const auto& line : store->recovery()) {
    service.Log("event=recovery detail=\"" + line + "\"");
    service.Audit({"recovery", "", "", "", line});
  }
  service.Audit({"config-load", "", "", "", loaded + " file=" + node_config.string()});
  ServerOptions opt;
  opt.host = self->host;
  opt.port = self->port;
  opt.handshake_timeout = std::chrono::milliseconds(nc.handshake_timeout_ms);
  opt.idle_timeout = std::chrono::milliseconds(nc.idle_timeout_ms);
  opt.io_timeout = std::chrono::milliseconds(nc.message_timeout_ms);
  opt.max_unauthenticated = nc.max_unauthenticated_connections;
  opt.max_unauthenticated_per_address = nc.max_unauthenticated_per_address;
  QV_ASSIGN_OR_RETURN(auto server, NodeServer::New(&service, key.get(), opt));
  const fs::path pid_file = node_config.parent_path() / "node.pid";
  QV_RETURN_IF_ERROR(WriteFileAtomic(pid_file, AsBytes(std::to_string(::getpid()) + "\n"), 0644));
  service.Log("event=start listen=" + self->host + ":" + std::to_string(server->port()) +
              " pid=" + std::to_string(::getpid()));
  service.Audit(
      {"start", "", "", "", "listen=" + self->host + ":" + std::to_string(server->port())});
  Witness witness(&service, audit.get(), &cluster, key.get(), nc.witness_interval_ms);
  Status s = server->Run(/*handle_signals=*/true);
  witness.Stop();
  service.FlushRefusals(/*all=*/true);
  service.Log("event=stop");
  service.Audit({"stop", "", "", "", s.ok() ? "clean" : s.ToString()});
  if (Status c = audit->SignCheckpoint(); !c.ok()) service.Log("event=checkpoint-failed");
  fs::remove(pid_file, ec);
  return s;
}

}  // namespace qv
