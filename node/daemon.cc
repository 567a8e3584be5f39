#include "node/daemon.h"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
#include "node/witness.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

// The daemon's timers around the threadless parts: each other node is
// witnessed on its own thread (node/witness.h), so a slow or lying peer
// delays no other; two-phase-commit settling and refusal counts run on one
// more. Every connection is registered, so Stop() cancels calls in flight
// instead of waiting on a peer.
class Timers {
 public:
  Timers(NodeService* service, const Witness* witness, const ClusterConfig* cluster,
         const SigningKey* key, uint32_t interval_ms)
      : service_(service),
        witness_(witness),
        cluster_(cluster),
        key_(key),
        interval_(interval_ms) {}
  ~Timers() {
    Stop();
    if (cancel_fd_ >= 0) ::close(cancel_fd_);
  }

  void Start() {
    threads_.emplace_back([this] { SettleLoop(); });
    for (const auto& n : cluster_->nodes) {
      if (n.id != service_->node_id()) threads_.emplace_back([this, &n] { PeerLoop(n); });
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    // Every connection's reads poll this descriptor: one write cancels them
    // all, handshakes included.
    const uint64_t one = 1;
    if (cancel_fd_ >= 0) (void)!::write(cancel_fd_, &one, sizeof one);
    stopping_.store(true);
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  // Waits one interval; false when stopping.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, std::chrono::milliseconds(interval_), [&] { return stop_; });
  }

  // A connection to `n` whose every exchange ends within `budget`, and
  // that Stop() cancels.
  template <typename F>
  auto WithConnection(const NodeEntry& n, std::chrono::milliseconds budget, F use)
      -> decltype(use(std::declval<NodeClient&>())) {
    ClientOptions co;
    co.connect_timeout = std::chrono::milliseconds(1000);
    co.io_timeout = std::chrono::milliseconds(5000);
    co.cancel_fd = cancel_fd_;
    auto client = NodeClient::Connect(n, *key_, co);
    if (!client.ok()) return client.status();
    (*client)->SetDeadline(std::chrono::steady_clock::now() + budget);
    return use(**client);
  }

  void SettleLoop() {
    while (Wait()) {
      service_->FlushRefusals();
      service_->Settle([this](const NodeEntry& n, const Request& r) -> Result<Response> {
        return WithConnection(n, std::chrono::milliseconds(5000),
                              [&](NodeClient& c) { return c.Call(r); });
      });
    }
  }

  void PeerLoop(const NodeEntry& n) {
    std::string alerted;  // the current mismatch: alerted when it appears or changes
    while (Wait()) {
      WitnessOutcome out;
      Status conn = WithConnection(n, witness_->limits().max_time, [&](NodeClient& c) {
        out = witness_->CheckPeer(n, c, &stopping_);
        return Status::Ok();
      });
      if (!conn.ok()) out.detail = conn.message();
      if (stopping_.load()) break;
      service_->NotePeerClock(n.id, out.skew);
      if (out.alert() && out.detail != alerted) {
        service_->Log("event=witness-mismatch subject=" + n.id + " detail=\"" + out.detail + "\"");
        service_->Audit({"alert", n.id, "", "", "witness: " + out.detail});
      }
      if (out.kind == WitnessOutcome::Kind::kCatchingUp) {
        service_->Log("event=witness-deferred subject=" + n.id + " detail=\"" + out.detail + "\"");
      }
      if (out.alert() || out.kind == WitnessOutcome::Kind::kWitnessed ||
          out.kind == WitnessOutcome::Kind::kUnchanged) {
        alerted = out.alert() ? out.detail : "";
      }
    }
  }

  NodeService* service_;
  const Witness* witness_;
  const ClusterConfig* cluster_;
  const SigningKey* key_;
  const uint32_t interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                // guarded by mu_
  const int cancel_fd_ = ::eventfd(0, EFD_CLOEXEC);  // written once, at Stop()
  std::atomic<bool> stopping_{false};                // for rounds in progress
  std::vector<std::thread> threads_;
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
  // Peers asked while handling a request: short bounds, so an unreachable
  // peer costs a prepare two seconds at most.
  so.peers = [k = key.get()](const NodeEntry& n, const Request& r) -> Result<Response> {
    ClientOptions co;
    co.connect_timeout = std::chrono::milliseconds(1000);
    co.io_timeout = std::chrono::milliseconds(2000);
    QV_ASSIGN_OR_RETURN(auto c, NodeClient::Connect(n, *k, co));
    c->SetDeadline(std::chrono::steady_clock::now() + std::chrono::milliseconds(2000));
    return c->Call(r);
  };
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
  WitnessLimits limits;
  limits.max_entries = nc.witness_max_entries;
  limits.max_time = std::chrono::milliseconds(nc.witness_max_ms);
  QV_ASSIGN_OR_RETURN(auto witness,
                      Witness::New(audit.get(), key.get(), SystemClock::Default(), limits));
  Timers timers(&service, witness.get(), &cluster, key.get(), nc.witness_interval_ms);
  timers.Start();
  Status s = server->Run(/*handle_signals=*/true);
  timers.Stop();
  service.FlushRefusals(/*all=*/true);
  service.Log("event=stop");
  service.Audit({"stop", "", "", "", s.ok() ? "clean" : s.ToString()});
  if (Status c = audit->SignCheckpoint(); !c.ok()) service.Log("event=checkpoint-failed");
  fs::remove(pid_file, ec);
  return s;
}

}  // namespace qv
