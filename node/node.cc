#include "node/node.h"

#include <sodium.h>
#include <sys/stat.h>

#include "crypto/pkcs11.h"
#include "crypto/secret.h"
#include "quorum/enrollment.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

// The cluster file against what this node remembers (quorum/enrollment.h):
// its enrollments re-verified as a chain, its first membership the one this
// node recorded when it first started (recorded now if this is that start),
// and the enrollments this node accepted since applied where the file does
// not carry them yet. A file that forks from what the node accepted, or
// lists a node no quorum enrolled, is refused: the node does not start.
Status CheckMembership(NodeStore& store, ClusterConfig& cluster, const std::string& file) {
  auto first = CheckEnrollments(cluster);
  if (!first.ok()) return first.status().WithContext(file);
  QV_ASSIGN_OR_RETURN(std::optional<Digest> recorded, store.FirstMembership());
  if (!recorded) {
    QV_RETURN_IF_ERROR(store.SetFirstMembership(*first));
  } else if (*recorded != *first) {
    return PermissionDenied(
        file +
        ": its nodes are not the membership this node first started in, and no quorum "
        "enrolled the difference; a node joins only through qv cluster enroll");
  }
  QV_ASSIGN_OR_RETURN(std::vector<Bytes> kept, store.Enrollments());
  for (size_t i = 0; i < kept.size(); ++i) {
    auto mine = Certificate::Parse(kept[i]);
    if (!mine.ok()) return mine.status().WithContext("enrollment " + std::to_string(i + 1));
    if (i < cluster.enrollments.size()) {
      auto theirs = Certificate::Parse(cluster.enrollments[i]);
      if (!theirs.ok() || theirs->request.id() != mine->request.id()) {
        return PermissionDenied(file + ": enrollment " + std::to_string(i + 1) +
                                " is not the one this node accepted");
      }
      continue;
    }
    auto next = ApplyEnrollment(cluster, kept[i]);
    if (!next.ok()) return next.status().WithContext("enrollment " + std::to_string(i + 1));
    cluster = std::move(*next);
  }
  return Status::Ok();
}

}  // namespace

std::string MasterKeyContext(const std::string& node_id) {
  return "quorumvault/master-key/v1/" + node_id;
}

Result<SecretBytes> LoadMasterKey(const NodeConfig& nc) {
  if (nc.master_key_pkcs11.empty()) return ReadSecretFile(nc.master_key_file, 32);
  QV_ASSIGN_OR_RETURN(Pkcs11Uri uri, Pkcs11Uri::Parse(nc.master_key_pkcs11));
  if (uri.module_path.empty()) uri.module_path = nc.pkcs11_module.string();
  QV_ASSIGN_OR_RETURN(Bytes wrapped, ReadFileBytes(nc.master_key_file, 4096));
  const char* pin = std::getenv("QV_PKCS11_PIN");
  auto session = Pkcs11Session::Open(uri, pin == nullptr ? "" : pin);
  if (!session.ok()) return session.status().WithContext("master key (node.master_key_pkcs11)");
  auto master = (*session)->Unwrap(uri.object, wrapped, AsBytes(MasterKeyContext(nc.id)));
  if (!master.ok()) return master.status().WithContext(nc.master_key_file.string());
  if (master->size() != 32) return Corruption(nc.master_key_file.string() + ": not a master key");
  return master;
}

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
  QV_ASSIGN_OR_RETURN(SecretBytes master, LoadMasterKey(nc));

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
  QV_RETURN_IF_ERROR(CheckMembership(*node->store_, cluster, nc.cluster_file.string()));
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
  so.on_pending = node->env_.on_pending;
  so.test_skip_quorum_check = node->env_.test_skip_quorum_check;
  so.test_scrub_from_leaves = node->env_.test_scrub_from_leaves;
  node->service_ =
      std::make_unique<NodeService>(node->store_.get(), cluster, nc.id, node->env_.log, so);
  node->cluster_ = std::move(cluster);
  const std::string loaded =
      "cluster=" + node->cluster_.name + " nodes=" + std::to_string(node->cluster_.nodes.size()) +
      " enrolled=" + std::to_string(node->cluster_.enrollments.size()) +
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

std::vector<std::string> Node::SelfScrub() {
  std::vector<std::string> problems;
  uint64_t backups = 0, units = 0, budget = kSelfScrubMaxBytes;
  for (const auto& b : store_->List()) {
    if (b.state != "published") continue;
    ++backups;
    const std::string id = BackupIdToText(b.id);
    auto bad = [&](const std::string& what) { problems.push_back("backup " + id + ": " + what); };
    auto encoded = store_->Manifest(b.id);
    auto sm = encoded.ok() ? SignedManifest::Parse(*encoded, &cluster_.coordinator)
                           : Result<SignedManifest>(encoded.status());
    if (!sm.ok()) {
      bad("manifest: " + sm.status().message());
      continue;
    }
    const Manifest& m = sm->manifest();
    auto leaf_bytes = store_->Leaves(b.id);
    std::vector<Digest> leaves;
    if (leaf_bytes.ok() && leaf_bytes->size() == m.stripe_count * 32) {
      leaves.resize(m.stripe_count);
      for (uint64_t i = 0; i < m.stripe_count; ++i) {
        std::copy_n(leaf_bytes->begin() + static_cast<std::ptrdiff_t>(32 * i), 32,
                    leaves[i].begin());
      }
    }
    if (leaves.empty() || b.fragment >= m.fragment_roots.size() ||
        MerkleRoot(leaves) != m.fragment_roots[b.fragment]) {
      bad("leaves do not match the fragment's signed root");
    } else {
      // The last unit and at least one at random.
      const uint64_t want =
          1 + std::max<uint64_t>(1, m.stripe_count * config_.self_scrub_permille / 1000);
      for (uint64_t n = 0; n < want && budget >= m.unit_size; ++n) {
        // The last unit first (a fragment cut short by a torn write loses
        // it), then random ones.
        uint64_t pick = m.stripe_count - 1;
        if (n > 0) {
          randombytes_buf(&pick, sizeof pick);
          pick %= m.stripe_count;
        }
        budget -= m.unit_size;
        ++units;
        auto unit = store_->ReadUnits(b.id, pick, 1);
        if (!unit.ok()) {
          bad("unit " + std::to_string(pick) + " unreadable: " + unit.status().message());
          break;
        }
        if (MerkleLeafHash(*unit) != leaves[pick]) {
          bad("unit " + std::to_string(pick) + " does not match its leaf");
          break;
        }
      }
    }
    auto plain = store_->ReadShare(b.id, sm->Hash());
    auto share = plain.ok() ? DecodeShare(plain->span()) : Result<Share>(plain.status());
    if (!share.ok()) {
      bad("share unreadable: " + share.status().message());
    } else if (Status v = VerifyShare(*share, m.commitments); !v.ok()) {
      bad("share does not match the commitments: " + v.message());
    }
  }
  std::string detail = "backups=" + std::to_string(backups) + " units=" + std::to_string(units) +
                       " problems=" + std::to_string(problems.size());
  service_->Log("event=self-scrub " + detail);
  std::vector<AuditEvent> events = {{"self-scrub", "", "", "", detail}};
  for (const auto& p : problems) {
    service_->Log("event=self-scrub-problem detail=\"" + p + "\"");
    events.push_back({"alert", "", "", "", "self-scrub: " + p});
  }
  (void)service_->AuditDurably(events);
  return problems;
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
  if (out.kind == WitnessOutcome::Kind::kWitnessed ||
      out.kind == WitnessOutcome::Kind::kUnchanged) {
    service_->metrics().Witnessed(peer.id, env_.clock->NowUnix());
  }
}

std::string Node::MetricsText() { return service_->metrics().Text(config_.id, service_->Stats()); }

void Node::Close(const Status& why) {
  service_->FlushRefusals(/*all=*/true);
  service_->Log("event=stop");
  service_->Audit({"stop", "", "", "", why.ok() ? "clean" : why.ToString()});
  if (Status c = audit_->SignCheckpoint(); !c.ok()) service_->Log("event=checkpoint-failed");
}

}  // namespace qv
