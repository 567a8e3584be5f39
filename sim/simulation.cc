#include "sim/simulation.h"

#include <sodium.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "base/corrupt.h"
#include "base/file_util.h"
#include "base/text.h"
#include "configs/local_cluster.h"
#include "coordinator/node_io.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "crypto/vss.h"

namespace qv::sim {

namespace fs = std::filesystem;

// A node's storage faults: rules a drill adds, and the crash they may
// cause. Once the node is crashing, every later step fails (a dead
// process writes nothing more).
class Simulation::Faults : public StorageFaults {
 public:
  explicit Faults(Endpoint* ep) : ep_(ep) {}
  struct Rule {
    std::string point;
    Status error;
    bool crash = false;
    uint32_t after = 0;
  };
  void Add(Rule r) { rules_.push_back(std::move(r)); }
  void Clear() { rules_.clear(); }
  Status Before(std::string_view point, uint64_t /*bytes*/) override {
    if (ep_->crashing) return IoError("simulated crash: the process is gone");
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
      if (it->point != point) continue;
      if (it->after > 0) {
        --it->after;
        continue;
      }
      const Rule r = *it;
      rules_.erase(it);  // each rule fires once
      if (r.crash) {
        ep_->crashing = true;
        return IoError("simulated crash at " + std::string(point));
      }
      return r.error;
    }
    return Status::Ok();
  }

 private:
  Endpoint* ep_;
  std::vector<Rule> rules_;
};

struct Simulation::SimNode {
  std::string id, site;
  fs::path config_file;
  std::unique_ptr<SkewedClock> clock;
  std::unique_ptr<Faults> faults;
  std::unique_ptr<Node> node;
  bool destroyed = false;
};

Simulation::Simulation(const SimOptions& o)
    : opt_(o),
      dir_(o.dir),
      rng_(o.seed),
      clock_(o.start_unix),
      net_(&clock_, rng_.Fork("network")),
      executor_(&rng_) {}

Simulation::~Simulation() {
  // Nodes first: their services are what the endpoints point at.
  for (auto& [id, n] : nodes_) n->node.reset();
}

std::string Simulation::Stamp() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "t+%" PRId64 ".%03" PRId64 "s", clock_.ms() / 1000,
                clock_.ms() % 1000);
  return buf;
}

std::string Simulation::Relative(std::string text) const {
  const std::string d = dir_.string();
  for (size_t at; !d.empty() && (at = text.find(d)) != std::string::npos;)
    text.replace(at, d.size(), "SIM");
  return text;
}

void Simulation::Note(const std::string& line) {
  events_.push_back(Stamp() + " " + Relative(line));
}

Result<std::unique_ptr<Simulation>> Simulation::New(const Topology& t, const SimOptions& o) {
  std::error_code ec;
  if (fs::exists(o.dir, ec) && !fs::is_empty(o.dir, ec)) {
    return InvalidArgument(o.dir.string() + " is not empty");
  }
  // Keys, nonces and ids from the seed: the same seed, the same run.
  UseSeededRandom(o.seed);
  std::unique_ptr<Simulation> s(new Simulation(o));
  LocalClusterOptions lo;
  lo.sites = t.sites;
  lo.nodes_per_site = t.nodes_per_site;
  lo.custodians = t.custodians;
  lo.quorum = t.quorum;
  lo.k = t.k;
  lo.m = t.m;
  lo.t = t.t;
  lo.spares = t.spares;
  QV_ASSIGN_OR_RETURN(s->cluster_, InitLocalCluster(o.dir / "cluster", lo));
  QV_ASSIGN_OR_RETURN(s->cluster_toml_, ReadFileText(o.dir / "cluster" / "cluster.toml", 1 << 20));
  s->net_.SetDefaultLinks(t.lan, t.wan);
  auto load = [&](const std::string& actor, const fs::path& file) -> Status {
    QV_ASSIGN_OR_RETURN(s->keys_[actor], SigningKey::Load(file));
    return Status::Ok();
  };
  QV_RETURN_IF_ERROR(load("coordinator", o.dir / "cluster" / "coordinator.key"));
  QV_RETURN_IF_ERROR(load("operator", o.dir / "cluster" / "operator.key"));
  for (const auto& c : s->cluster_.custodians) {
    QV_RETURN_IF_ERROR(load(c.id, o.dir / "cluster" / "custodians" / (c.id + ".key")));
  }
  QV_ASSIGN_OR_RETURN(s->keys_["attacker"], SigningKey::Generate());
  for (size_t i = 0; i < s->cluster_.nodes.size(); ++i) {
    const NodeEntry& e = s->cluster_.nodes[i];
    auto n = std::make_unique<SimNode>();
    n->id = e.id;
    n->site = e.site;
    n->config_file = NodeConfigPath(o.dir / "cluster", e.id);
    n->clock = std::make_unique<SkewedClock>(&s->clock_);
    Endpoint& ep = s->net_.endpoints()[e.id];
    ep.site = e.site;
    ep.share_x = static_cast<uint32_t>(i + 1);
    n->faults = std::make_unique<Faults>(&ep);
    QV_RETURN_IF_ERROR(load(e.id, n->config_file.parent_path() / "node.key"));
    QV_RETURN_IF_ERROR(s->OpenNode(*n));
    s->nodes_[e.id] = std::move(n);
  }
  s->Note("cluster of " + std::to_string(s->cluster_.nodes.size()) + " nodes in " +
          std::to_string(s->cluster_.sites.size()) + " sites, k=" + std::to_string(s->cluster_.k) +
          " m=" + std::to_string(s->cluster_.m) + " t=" + std::to_string(s->cluster_.t) +
          " quorum=" + std::to_string(s->cluster_.quorum) + " of " +
          std::to_string(s->cluster_.custodians.size()));
  s->NewEvidence();  // start-up entries are not evidence of anything
  return s;
}

Result<NodeEnv> Simulation::EnvFor(SimNode& n) {
  NodeEnv env;
  env.clock = n.clock.get();
  env.log = [](const std::string&) {};  // log lines carry real durations: not in a report
  env.dial = [this, site = n.site, from = n.id](
                 const NodeEntry& peer, const SigningKey& as,
                 std::chrono::milliseconds) -> Result<std::unique_ptr<NodeCaller>> {
    return SimCaller::Dial(&net_, site, as.public_key(), peer.id, from);
  };
  env.faults = n.faults.get();
  env.test_skip_quorum_check = opt_.test_skip_quorum_check;
  env.test_scrub_from_leaves = opt_.test_scrub_from_leaves.count(n.id) > 0;
  return env;
}

// As the daemon opens it: the node file and the cluster file from disk.
Status Simulation::OpenNode(SimNode& n) {
  QV_ASSIGN_OR_RETURN(NodeConfig nc, NodeConfig::Load(n.config_file));
  QV_ASSIGN_OR_RETURN(ClusterConfig cluster, ClusterConfig::Load(nc.cluster_file));
  QV_ASSIGN_OR_RETURN(NodeEnv env, EnvFor(n));
  QV_ASSIGN_OR_RETURN(n.node, Node::Open(nc, std::move(cluster), env, n.config_file.string()));
  Endpoint& ep = net_.endpoints()[n.id];
  ep.service = &n.node->service();
  ep.crashing = false;
  ++ep.incarnation;
  return Status::Ok();
}

bool Simulation::Running(const std::string& node) const {
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second->node != nullptr;
}

Status Simulation::Crash(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return NotFound("no node " + node);
  it->second->node.reset();
  Endpoint& ep = net_.endpoints()[node];
  ep.service = nullptr;
  ep.crashing = false;
  Note(node + " down");
  return Status::Ok();
}

Status Simulation::Restart(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return NotFound("no node " + node);
  if (it->second->destroyed) return FailedPrecondition(node + " was destroyed");
  if (it->second->node) return Status::Ok();
  Status s = OpenNode(*it->second);
  Note(node + (s.ok() ? " restarted from its disk" : " refused to start: " + s.message()));
  // As `qv cluster up` reports a node that exits at start.
  if (!s.ok()) return FailedPrecondition(node + " refused to start: " + s.ToString());
  return s;
}

Status Simulation::Destroy(const std::string& node) {
  QV_RETURN_IF_ERROR(Crash(node));
  SimNode& n = *nodes_[node];
  n.destroyed = true;
  std::error_code ec;
  fs::remove_all(n.config_file.parent_path() / "data", ec);
  Note(node + " destroyed with its disk");
  return Status::Ok();
}

void Simulation::SetSkew(const std::string& node, int64_t seconds) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  it->second->clock->set_skew(seconds);
  Note(node + " clock skewed by " + std::to_string(seconds) + " s");
}

void Simulation::AddFault(const std::string& node, const std::string& point, Status error,
                          bool crash, uint32_t after) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  it->second->faults->Add({point, std::move(error), crash, after});
}

void Simulation::ClearFaults() {
  for (auto& [id, n] : nodes_) n->faults->Clear();
}

void Simulation::ReapCrashed() {
  for (auto& [id, ep] : net_.endpoints()) {
    if (ep.crashing) {
      (void)Crash(id);
      Note(id + " crashed (storage fault)");
    }
  }
}

Result<std::vector<std::string>> Simulation::SelfScrub(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || !it->second->node) return NotFound(node + " is not running");
  return it->second->node->SelfScrub();
}

void Simulation::TickAll() {
  for (auto& [id, n] : nodes_) {
    if (n->node && !net_.endpoints()[id].crashing) n->node->Tick();
  }
  ReapCrashed();
}

void Simulation::WitnessAll() {
  for (auto& [id, n] : nodes_) {
    if (!n->node) continue;
    for (const auto& peer : cluster_.nodes) {
      if (peer.id != id && n->node) n->node->WitnessRound(peer);
    }
  }
  ReapCrashed();
}

Result<const SigningKey*> Simulation::Key(const std::string& actor) {
  auto it = keys_.find(actor);
  if (it == keys_.end()) return NotFound("no actor " + actor);
  return it->second.get();
}

Result<std::unique_ptr<ClusterSession>> Simulation::Session(const std::string& actor) {
  QV_ASSIGN_OR_RETURN(const SigningKey* key, Key(actor));
  SessionEnv env;
  env.dial = [this,
              pk = key->public_key()](const NodeEntry& n) -> Result<std::unique_ptr<NodeCaller>> {
    return SimCaller::Dial(&net_, kOpsSite, pk, n.id);
  };
  env.executor = &executor_;
  env.clock = &clock_;
  return ClusterSession::Open(cluster_, key, std::move(env));
}

std::vector<std::string> Simulation::NewEvidence() {
  std::vector<std::string> out;
  for (auto& [id, n] : nodes_) {
    if (!n->node) continue;
    uint64_t& seen = evidence_seen_[id];
    const uint64_t head = n->node->audit().head_seq();
    if (head < seen) seen = 0;  // a rebuilt log starts again
    auto entries = n->node->audit().Entries(seen + 1, 100000);
    if (!entries.ok()) continue;
    for (const auto& e : *entries) {
      seen = e.seq;
      if (IsEvidence(e)) out.push_back(Relative(EvidenceLine(id, e)));
    }
  }
  return out;
}

// --- Attacker capabilities ---------------------------------------------------

fs::path Simulation::NodeDir(const std::string& node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? fs::path() : it->second->config_file.parent_path();
}

Status Simulation::Steal(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return NotFound("no node " + node);
  const fs::path from = it->second->config_file.parent_path();
  const fs::path to = dir_ / "loot" / node;
  std::error_code ec;
  fs::create_directories(to, ec);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) return IoError("stealing " + node + ": " + ec.message());
  Note("attacker copies " + node + "'s disk, node key and master key");
  return Status::Ok();
}

Status Simulation::CombineStolen(const std::string& backup) {
  const StoredArtifact* a = Backed(backup);
  if (a == nullptr) return NotFound("no backup " + backup);
  std::vector<Share> shares;
  std::vector<Point> commitments;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "loot", ec)) {
    const std::string id = e.path().filename().string();
    auto master = ReadSecretFile(e.path() / "master.key", 32);
    if (!master.ok()) continue;
    auto store =
        NodeStore::Open(e.path() / "data", std::move(master).value(), id, cluster_.coordinator);
    if (!store.ok()) continue;
    auto encoded = (*store)->Manifest(a->id);
    if (!encoded.ok()) continue;
    auto sm = SignedManifest::Parse(*encoded, &cluster_.coordinator);
    if (!sm.ok()) continue;
    commitments = sm->manifest().commitments;
    auto plain = (*store)->ReadShare(a->id, sm->Hash());
    if (!plain.ok()) continue;
    auto share = DecodeShare(plain->span());
    if (share.ok()) shares.push_back(std::move(share).value());
  }
  Note("attacker holds " + std::to_string(shares.size()) + " shares of " + backup);
  if (commitments.empty()) return FailedPrecondition("the stolen disks hold no share of " + backup);
  auto key = Combine(shares, commitments);
  if (!key.ok()) {
    return PermissionDenied("the data key cannot be rebuilt from " + std::to_string(shares.size()) +
                            " stolen shares: " + key.status().message());
  }
  return Status::Ok();  // the attack worked
}

Status Simulation::RewriteAudit(const std::string& node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return NotFound("no node " + node);
  QV_RETURN_IF_ERROR(Crash(node));
  const fs::path db = it->second->config_file.parent_path() / "data" / "audit.db";
  const SigningKey& stolen = *keys_[node];
  FakeClock forge_clock(0);
  std::vector<AuditEntry> entries;
  std::vector<Checkpoint> checkpoints;
  std::vector<WitnessRecord> held;
  {
    QV_ASSIGN_OR_RETURN(auto log, AuditLog::Open(db, node, &stolen, &forge_clock, 1u << 30));
    QV_ASSIGN_OR_RETURN(entries, log->Entries(1, 1u << 20));
    QV_ASSIGN_OR_RETURN(checkpoints, log->Checkpoints());
    QV_ASSIGN_OR_RETURN(held, log->Witnessed());
  }
  uint64_t target = 0;
  for (const auto& e : entries) {
    if (e.event.kind == "release" && target == 0) target = e.seq;
  }
  if (target == 0) return FailedPrecondition(node + " released nothing to hide");
  const fs::path forged_db = dir_ / ("forged-" + node + ".db");
  {
    QV_ASSIGN_OR_RETURN(auto forged,
                        AuditLog::Open(forged_db, node, &stolen, &forge_clock, 1u << 30));
    size_t next_cp = 0;
    for (auto e : entries) {
      if (e.seq == target) {
        e.event.kind = "refusal";
        e.event.detail = "below quorum";
      }
      forge_clock.Set(e.time);
      QV_RETURN_IF_ERROR(forged->Append(e.event));
      if (next_cp < checkpoints.size() && checkpoints[next_cp].seq == e.seq) {
        forge_clock.Set(checkpoints[next_cp++].time);
        QV_RETURN_IF_ERROR(forged->SignCheckpoint());
      }
    }
    for (const auto& r : held) QV_RETURN_IF_ERROR(forged->RecordWitness(r));
  }
  std::error_code ec;
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(db.string() + suffix, ec);
  fs::rename(forged_db, db, ec);
  if (ec) return IoError("replacing the audit log: " + ec.message());
  Note("attacker rewrites " + node + "'s audit history (release at entry " +
       std::to_string(target) + " made a refusal) and re-signs it with " + node + "'s key");
  evidence_seen_[node] = entries.size();
  return Restart(node);
}

Status Simulation::ReplaceManifest(const std::string& node, const std::string& backup) {
  const StoredArtifact* a = Backed(backup);
  auto it = nodes_.find(node);
  if (a == nullptr || it == nodes_.end()) return NotFound("no such node or backup");
  const fs::path file = it->second->config_file.parent_path() / "data" / "backups" /
                        BackupIdToText(a->id) / "manifest";
  QV_ASSIGN_OR_RETURN(Bytes encoded, ReadFileBytes(file, kMaxManifestSize));
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &cluster_.coordinator));
  Manifest m = sm.manifest();
  m.artifact_name += "-swapped";
  QV_ASSIGN_OR_RETURN(SignedManifest forged, SignedManifest::Sign(m, *keys_["attacker"]));
  QV_RETURN_IF_ERROR(WriteFileAtomic(file, forged.encoded(), 0600));
  Note("attacker replaces " + node + "'s manifest of " + backup + " with one it signed");
  return Status::Ok();
}

void Simulation::MakeLiar(const std::string& node) {
  net_.endpoints()[node].lying = true;
  Note(node + " is under the attacker's control and lies from now on");
}

namespace {

void BreakPolicy(ClusterConfig& c, const std::string& what) {
  if (what == "quorum-zero") c.quorum = 0;
  if (what == "quorum-above-custodians") c.quorum = static_cast<uint32_t>(c.custodians.size() + 1);
  if (what == "duplicate-custodian-key" && c.custodians.size() >= 2) {
    c.custodians[1].public_key = c.custodians[0].public_key;
  }
}

}  // namespace

Status Simulation::InitWith(const std::string& what) {
  // `qv cluster init` takes the quorum; a key listed twice can only come
  // from an edited file, which the loader every tool uses must refuse.
  if (what == "duplicate-custodian-key") {
    ClusterConfig bad = cluster_;
    BreakPolicy(bad, what);
    return ClusterConfig::Parse(bad.ToToml(), "cluster.toml").status();
  }
  LocalClusterOptions lo;
  lo.sites = static_cast<uint32_t>(cluster_.sites.size());
  lo.nodes_per_site = static_cast<uint32_t>(cluster_.nodes.size() / cluster_.sites.size());
  lo.custodians = static_cast<uint32_t>(cluster_.custodians.size());
  lo.quorum = what == "quorum-zero" ? 0 : lo.custodians + 1;
  return InitLocalCluster(dir_ / ("init-" + what), lo).status();
}

Status Simulation::Misconfigure(const std::string& what, std::vector<std::string>* refusals) {
  ClusterConfig bad = cluster_;
  BreakPolicy(bad, what);
  QV_RETURN_IF_ERROR(
      WriteFileAtomic(dir_ / "cluster" / "cluster.toml", AsBytes(bad.ToToml()), 0600));
  Note("the cluster file is edited: " + what);
  for (const auto& n : cluster_.nodes) {
    if (nodes_[n.id]->destroyed) continue;
    (void)Crash(n.id);
    Status s = Restart(n.id);
    if (!s.ok()) refusals->push_back(n.id + ": " + s.message());
  }
  return Status::Ok();
}

Status Simulation::RestoreClusterFile() {
  QV_RETURN_IF_ERROR(
      WriteFileAtomic(dir_ / "cluster" / "cluster.toml", AsBytes(cluster_toml_), 0600));
  for (const auto& n : cluster_.nodes) {
    if (!nodes_[n.id]->destroyed && !Running(n.id)) QV_RETURN_IF_ERROR(Restart(n.id));
  }
  return Status::Ok();
}

}  // namespace qv::sim
