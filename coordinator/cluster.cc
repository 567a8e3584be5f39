#include "coordinator/cluster.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "base/text.h"
#include "node/node_service.h"

namespace qv {

std::vector<uint32_t> FragmentReadOrder(std::vector<std::pair<double, uint32_t>> ms_and_fragment) {
  if (!ms_and_fragment.empty()) {
    const double fastest = std::min_element(ms_and_fragment.begin(), ms_and_fragment.end())->first;
    for (auto& [ms, f] : ms_and_fragment) {
      if (ms <= 2 * fastest + kSameSpeedMs) ms = 0;
    }
  }
  std::sort(ms_and_fragment.begin(), ms_and_fragment.end());
  std::vector<uint32_t> order;
  for (const auto& [ms, f] : ms_and_fragment) order.push_back(f);
  return order;
}

Result<std::unique_ptr<ClusterSession>> ClusterSession::Open(ClusterConfig config,
                                                             const SigningKey* key,
                                                             const ClientOptions& options) {
  SessionEnv env;
  env.dial = [key, options](const NodeEntry& n) -> Result<std::unique_ptr<NodeCaller>> {
    QV_ASSIGN_OR_RETURN(auto c, NodeClient::Connect(n, *key, options));
    return std::unique_ptr<NodeCaller>(std::move(c));
  };
  return Open(std::move(config), key, std::move(env));
}

Result<std::unique_ptr<ClusterSession>> ClusterSession::Open(ClusterConfig config,
                                                             const SigningKey* key,
                                                             SessionEnv env) {
  if (!env.dial || env.executor == nullptr || env.clock == nullptr || key == nullptr) {
    return InvalidArgument("a cluster session needs a dialer, an executor, a clock and a key");
  }
  std::unique_ptr<ClusterSession> s(new ClusterSession());
  s->config_ = std::move(config);
  s->key_ = key;
  s->env_ = std::move(env);
  const size_t n = s->config_.nodes.size();
  s->clients_.resize(n);
  s->connect_ms_.resize(n);
  std::vector<Status> errors(n);
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < n; ++i) {
    tasks.emplace_back([&, i] {
      const double start = s->env_.clock->MonotonicMs();
      auto c = s->env_.dial(s->config_.nodes[i]);
      s->connect_ms_[i] = s->env_.clock->MonotonicMs() - start;
      if (c.ok()) {
        s->clients_[i] = std::move(c).value();
      } else {
        errors[i] = c.status();
      }
    });
  }
  s->env_.executor->RunAll(std::move(tasks));
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].ok()) {
      s->problems_.push_back(s->config_.nodes[i].id + " unreachable: " + errors[i].message());
    }
  }
  return s;
}

size_t ClusterSession::reachable() const {
  size_t r = 0;
  for (const auto& c : clients_) r += c != nullptr;
  return r;
}

std::vector<NodeCaller*> ClusterSession::Reachable() {
  std::vector<NodeCaller*> out;
  for (auto& c : clients_) {
    if (c) out.push_back(c.get());
  }
  return out;
}

Result<BackupOutcome> ClusterSession::Backup(const Artifact& artifact, BackupOptions options) {
  // On the first k + m nodes of the cluster file; those after are spares.
  const size_t n = options.k + options.m >= 1 && options.k + options.m <= clients_.size()
                       ? options.k + options.m
                       : clients_.size();
  for (size_t f = 0; f < n; ++f) {
    if (clients_[f] != nullptr) continue;
    std::string why;
    for (const auto& p : problems_) why += (why.empty() ? "" : "; ") + p;
    return FailedPrecondition("backup needs every node it places a fragment on: " + why);
  }
  std::vector<NodeCaller*> callers;
  std::vector<Placement> placement;
  for (uint32_t f = 0; f < n; ++f) {
    callers.push_back(clients_[f].get());
    placement.push_back({f, config_.nodes[f].id, config_.nodes[f].site});
  }
  std::vector<PublicKey> keys;
  for (size_t f = 0; f < n; ++f) keys.push_back(config_.nodes[f].public_key);
  RemoteTarget target(callers, placement, keys, 8u << 20, env_.executor);
  // The policy comes from the cluster file at backup time and is signed
  // into the manifest: later edits to the file do not loosen it.
  options.policy.custodians.clear();
  for (const auto& c : config_.custodians)
    options.policy.custodians.push_back({c.id, c.public_key});
  options.policy.quorum = config_.quorum;
  options.policy.max_request_seconds = config_.max_request_seconds;
  options.policy.quorum_ops = AllQuorumOps();
  options.clock = env_.clock;
  return RunBackup(artifact, target, *key_, options);
}

Result<SignedManifest> ClusterSession::Manifest(const BackupId& id,
                                                std::vector<std::string>* problems) {
  return FetchManifest(Reachable(), id, config_.coordinator, problems);
}

Result<RestoreReport> ClusterSession::Restore(const Certificate& certificate,
                                              const BoxKeyPair& reply_key, ArtifactWriter& writer,
                                              const RestoreOptions& options,
                                              std::vector<std::string>* problems) {
  for (const auto& p : problems_) problems->push_back(p);
  const QuorumRequest& q = certificate.request.request();
  auto sm = Manifest(q.backup_id, problems);
  if (sm.ok() && sm->Hash() != q.manifest_hash) {
    sm = Corruption("the nodes' manifest of " + BackupIdToText(q.backup_id) +
                    " is not the one the request names");
  }
  if (!sm.ok()) {
    writer.Abort();
    return sm.status();
  }
  const qv::Manifest& m = sm->manifest();
  std::vector<std::unique_ptr<FragmentSource>> sources;
  std::vector<NodeCaller*> holders;
  std::vector<uint32_t> fragments;
  for (const auto& p : m.placement) {
    const NodeEntry* node = config_.FindNode(p.node_id);
    if (node == nullptr) {
      problems->push_back(p.node_id + ": placed in the manifest but not in the cluster file");
      continue;
    }
    NodeCaller* c = clients_[node - config_.nodes.data()].get();
    if (c == nullptr) continue;  // already named as unreachable
    holders.push_back(c);
    fragments.push_back(p.fragment);
  }
  // Before the certificate is presented (which spends it), check what can
  // be checked here: enough holders reachable for k fragments and t shares,
  // and room at the destination.
  if (holders.size() < std::max(m.k, m.t)) {
    writer.Abort();
    return FailedPrecondition(
        std::to_string(holders.size()) + " of the backup's " + std::to_string(m.placement.size()) +
        " nodes are reachable; a restore needs k=" + std::to_string(m.k) +
        " fragments and t=" + std::to_string(m.t) + " shares: the certificate was not presented");
  }
  if (Status st = writer.Preflight(m.plaintext_size); !st.ok()) {
    writer.Abort();
    return st.WithContext("the certificate was not presented");
  }
  // Every reachable holder checks the certificate itself; only those that
  // released serve fragments (on the same connection). Each also gets a
  // proof that this run holds the reply key, so a restore that failed here
  // for a local reason can present the certificate again.
  const Bytes cert = certificate.Encode();
  std::vector<Bytes> proofs;
  for (NodeCaller* h : holders) {
    Bytes proof;
    const NodeEntry* node = config_.FindNode(h->name());
    auto x = X25519PublicFromEd25519(node->public_key);
    if (x.ok()) {
      auto p = ProvePossession(reply_key, *x,
                               AsBytes(ReleaseRetryContext(certificate.request.id(), node->id)));
      if (p.ok()) proof.assign(p->begin(), p->end());
    }
    proofs.push_back(std::move(proof));
  }
  auto shares = ReleaseShares(holders, *sm, cert, reply_key, problems, &proofs, env_.executor);
  std::set<std::string> released;
  for (const auto& s : shares) released.insert(s.source);
  // Every releasing node records who else released, before the fetches
  // take over the connections (a long restore may outlast their idle
  // timeout), whatever the restore's outcome.
  ReleaseReceipt receipt{certificate.request.id(), {}};
  std::vector<NodeCaller*> releasers;
  for (NodeCaller* h : holders) {
    if (!released.count(h->name())) continue;
    receipt.released_by.push_back(h->name());
    releasers.push_back(h);
  }
  if (!releasers.empty()) {
    SendReceipts(releasers, q.backup_id, receipt, problems, env_.executor);
  }
  for (size_t i = 0; i < holders.size(); ++i) {
    if (!released.count(holders[i]->name())) continue;
    sources.push_back(NewRemoteSource(holders[i], q.backup_id, fragments[i], m.unit_size,
                                      m.stripe_count, env_.executor));
  }
  if (shares.size() < m.t) {
    writer.Abort();
    std::string why;
    for (const auto& p : *problems) why += "\n  " + p;
    return PermissionDenied(std::to_string(shares.size()) + " of " +
                            std::to_string(holders.size()) + " reachable nodes released (need " +
                            std::to_string(m.t) + "):" + why);
  }
  // Fastest nodes first (connect and handshake time measured at Open).
  RestoreOptions o = options;
  if (o.fragment_order.empty()) {
    std::vector<std::pair<double, uint32_t>> by_speed;
    for (size_t i = 0; i < holders.size(); ++i) {
      if (!released.count(holders[i]->name())) continue;
      const NodeEntry* node = config_.FindNode(holders[i]->name());
      by_speed.push_back({connect_ms_[node - config_.nodes.data()], fragments[i]});
    }
    o.fragment_order = FragmentReadOrder(std::move(by_speed));
  }
  return RunRestore(*sm, std::move(sources), std::move(shares), writer, o);
}

Result<std::vector<ClusterSession::Listed>> ClusterSession::List() {
  std::map<BackupId, Listed> seen;
  std::vector<std::string> why = problems_;
  size_t answered = 0;
  for (NodeCaller* c : Reachable()) {
    Request r;
    r.op = Op::kListBackups;
    auto resp = CallChecked(*c, r);
    if (!resp.ok()) {
      why.push_back(resp.status().message());
      continue;
    }
    ++answered;
    for (const auto& id : resp->ids) {
      seen[id].id = id;
      ++seen[id].published;
    }
    for (size_t at = 0; at + 16 <= resp->payload.size(); at += 16) {
      BackupId id;
      std::copy_n(resp->payload.begin() + static_cast<std::ptrdiff_t>(at), 16, id.begin());
      seen[id].id = id;
      ++seen[id].committing;
    }
  }
  if (answered == 0) {
    std::string all;
    for (const auto& w : why) all += "; " + w;
    return FailedPrecondition("no node answered" + all);
  }
  std::vector<Listed> out;
  for (const auto& [id, l] : seen) {
    if (l.published > 0) out.push_back(l);
  }
  return out;
}

std::vector<NodeHealth> ClusterSession::Health() {
  std::vector<NodeHealth> out;
  for (size_t i = 0; i < config_.nodes.size(); ++i) {
    const auto& n = config_.nodes[i];
    NodeHealth h{n.id, n.site, n.host + ":" + std::to_string(n.port), false, "", connect_ms_[i],
                 {},   {}};
    if (!clients_[i]) {
      h.detail = "unreachable";
      for (const auto& p : problems_) {
        if (p.rfind(n.id + " ", 0) == 0) h.detail = p.substr(n.id.size() + 1);
      }
    } else {
      const double start = env_.clock->MonotonicMs();
      const int64_t before = env_.clock->NowUnix();
      Request r;
      r.op = Op::kHealth;
      auto resp = CallChecked(*clients_[i], r);
      h.ms = env_.clock->MonotonicMs() - start;
      h.ok = resp.ok();
      h.detail = resp.ok() ? Printable(resp->message) : resp.status().message();
      // The node's clock, then (nodes since issue 16) its stats.
      if (resp.ok() && resp->payload.size() >= 8) {
        const auto theirs = static_cast<int64_t>(GetU64BE(resp->payload.data()));
        if (PlausibleUnix(theirs) && PlausibleUnix(before)) h.skew = theirs - before;
        if (resp->payload.size() > 8) {
          auto stats = DecodeNodeStats(ByteSpan(resp->payload).subspan(8));
          if (stats.ok()) h.stats = *stats;
        }
      }
    }
    out.push_back(h);
  }
  return out;
}

size_t ClusterSession::PostDenial(const Certificate& denials, std::vector<std::string>* problems) {
  for (const auto& p : problems_) problems->push_back(p);
  size_t recorded = 0;
  const Bytes payload = denials.Encode();
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (!clients_[i]) continue;
    Request r;
    r.op = Op::kPostDenial;
    r.backup_id = denials.request.request().backup_id;
    r.payload = payload;
    auto resp = CallChecked(*clients_[i], r);
    if (resp.ok()) {
      ++recorded;
    } else {
      problems->push_back(resp.status().message());
    }
  }
  return recorded;
}

std::vector<ClusterSession::EnrollOutcome> ClusterSession::PostEnrollment(
    const Certificate& enrollment) {
  std::vector<EnrollOutcome> out;
  const Bytes payload = enrollment.Encode();
  for (size_t i = 0; i < clients_.size(); ++i) {
    EnrollOutcome o{config_.nodes[i].id, Status::Ok(), ""};
    if (!clients_[i]) {
      o.status = IoError(config_.nodes[i].id + " is unreachable");
    } else {
      Request r;
      r.op = Op::kEnroll;
      r.payload = payload;
      auto resp = CallChecked(*clients_[i], r);
      if (resp.ok()) {
        o.message = resp->message;
      } else {
        o.status = resp.status();
      }
    }
    out.push_back(std::move(o));
  }
  return out;
}

NodeCaller* ClusterSession::caller(const std::string& id) {
  const NodeEntry* n = config_.FindNode(id);
  return n == nullptr ? nullptr : caller(static_cast<size_t>(n - config_.nodes.data()));
}

}  // namespace qv
