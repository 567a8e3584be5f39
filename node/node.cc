#include "node/node.h"

#include <sys/stat.h>

#include "crypto/secret.h"

namespace qv {

namespace fs = std::filesystem;

Result<std::unique_ptr<Node>> Node::Open(const NodeConfig& nc, ClusterConfig cluster, NodeEnv env,
                                         const std::string& source) {
  if (env.clock == nullptr) return InvalidArgument("a node needs a clock");
  const NodeEntry* self = cluster.FindNode(nc.id);
  if (self == nullptr) {
    return InvalidArgument(source + ": node.id: " + nc.id + " is not in " +
                           nc.cluster_file.string());
  }
  std::unique_ptr<Node> node(new Node());
  node->config_ = nc;
  node->self_ = *self;
  node->env_ = std::move(env);
  QV_ASSIGN_OR_RETURN(node->key_, SigningKey::Load(nc.key_file));
  if (node->key_->public_key() != self->public_key) {
    return PermissionDenied(nc.key_file.string() + " is not the key " + nc.cluster_file.string() +
                            " pins for " + nc.id);
  }
  QV_ASSIGN_OR_RETURN(SecretBytes master, ReadSecretFile(nc.master_key_file, 32));

  std::error_code ec;
  fs::create_directories(nc.data_dir, ec);
  if (::chmod(nc.data_dir.c_str(), 0700) != 0) return ErrnoError("chmod " + nc.data_dir.string());
  QV_ASSIGN_OR_RETURN(node->audit_,
                      AuditLog::Open(nc.data_dir / "audit.db", nc.id, node->key_.get(),
                                     node->env_.clock, nc.checkpoint_every));
  // A metadata database that is gone is rebuilt: from the backup folders'
  // signed manifests and from what the audit log remembers.
  NodeStore::RecoveryHints hints;
  const bool rebuild = !fs::exists(nc.data_dir / "meta.db", ec);
  if (rebuild) {
    QV_ASSIGN_OR_RETURN(auto stored, node->audit_->BackupsStored());
    for (const auto& id : stored) {
      if (auto b = BackupIdFromText(id); b.ok()) hints.published.insert(*b);
    }
    QV_ASSIGN_OR_RETURN(auto released, node->audit_->RequestsReleased());
    for (const auto& [request, backup] : released) {
      if (auto b = BackupIdFromText(backup); b.ok()) hints.spent.emplace_back(request, *b);
    }
  }
  QV_ASSIGN_OR_RETURN(node->store_,
                      NodeStore::Open(nc.data_dir, std::move(master), nc.id, cluster.coordinator,
                                      rebuild ? &hints : nullptr,
                                      NodeStoreEnv{node->env_.clock, node->env_.faults}));
  NodeServiceOptions so;
  so.audit = node->audit_.get();
  so.clock = node->env_.clock;
  // Peers asked while handling a request: a short bound, so an unreachable
  // peer costs a prepare two seconds at most.
  Node* raw = node.get();
  so.peers = [raw](const NodeEntry& n, const Request& r) -> Result<Response> {
    return raw->CallPeer(n, r, std::chrono::milliseconds(2000));
  };
  so.max_skew = nc.clock_skew_seconds;
  so.identity = node->key_.get();
  so.test_skip_quorum_check = node->env_.test_skip_quorum_check;
  so.test_scrub_from_leaves = node->env_.test_scrub_from_leaves;
  node->service_ =
      std::make_unique<NodeService>(node->store_.get(), cluster, nc.id, node->env_.log, so);
  node->cluster_ = std::move(cluster);
  const std::string loaded =
      "cluster=" + node->cluster_.name + " nodes=" + std::to_string(node->cluster_.nodes.size()) +
      " cleaned_interrupted_uploads=" + std::to_string(node->store_->cleaned_on_open());
  node->service_->Log("event=config-load " + loaded);
  for (const auto& line : node->store_->recovery()) {
    node->service_->Log("event=recovery detail=\"" + line + "\"");
    node->service_->Audit({"recovery", "", "", "", line});
  }
  node->service_->Audit({"config-load", "", "", "", loaded + " file=" + source});
  WitnessLimits limits;
  limits.max_entries = nc.witness_max_entries;
  limits.max_time = std::chrono::milliseconds(nc.witness_max_ms);
  QV_ASSIGN_OR_RETURN(node->witness_,
                      Witness::New(node->audit_.get(), node->key_.get(), node->env_.clock, limits));
  return node;
}

Node::~Node() = default;

Result<Response> Node::CallPeer(const NodeEntry& peer, const Request& r,
                                std::chrono::milliseconds budget) const {
  if (!env_.dial) return IoError("this node has no way to reach its peers");
  QV_ASSIGN_OR_RETURN(auto caller, env_.dial(peer, *key_, budget));
  return caller->Call(r);
}

void Node::Tick() {
  service_->FlushRefusals();
  service_->Settle([this](const NodeEntry& n, const Request& r) {
    return CallPeer(n, r, std::chrono::milliseconds(5000));
  });
}

void Node::WitnessRound(const NodeEntry& peer, const std::atomic<bool>* stop) {
  WitnessOutcome out;
  if (!env_.dial) return;
  auto caller = env_.dial(peer, *key_, witness_->limits().max_time);
  if (caller.ok()) {
    out = witness_->CheckPeer(peer, **caller, stop);
  } else {
    out.detail = caller.status().message();
  }
  if (stop != nullptr && stop->load()) return;
  service_->NotePeerClock(peer.id, out.skew);
  std::lock_guard<std::mutex> lock(alerted_mu_);
  std::string& alerted = alerted_[peer.id];
  if (out.alert() && out.detail != alerted) {
    service_->Log("event=witness-mismatch subject=" + peer.id + " detail=\"" + out.detail + "\"");
    service_->Audit({"alert", peer.id, "", "", "witness: " + out.detail});
  }
  if (out.kind == WitnessOutcome::Kind::kCatchingUp) {
    service_->Log("event=witness-deferred subject=" + peer.id + " detail=\"" + out.detail + "\"");
  }
  if (out.alert() || out.kind == WitnessOutcome::Kind::kWitnessed ||
      out.kind == WitnessOutcome::Kind::kUnchanged) {
    alerted = out.alert() ? out.detail : "";
  }
}

void Node::Close(const Status& why) {
  service_->FlushRefusals(/*all=*/true);
  service_->Log("event=stop");
  service_->Audit({"stop", "", "", "", why.ok() ? "clean" : why.ToString()});
  if (Status c = audit_->SignCheckpoint(); !c.ok()) service_->Log("event=checkpoint-failed");
}

}  // namespace qv
