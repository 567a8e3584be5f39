#include "coordinator/repair.h"

#include <sodium.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "erasure/reed_solomon.h"
#include "node/share_recovery.h"

namespace qv {

namespace {

// Cluster nodes holding nothing of the backup, and how much of it each
// site holds.
struct Spares {
  std::vector<const NodeEntry*> nodes;
  std::map<std::string, size_t> per_site;
  // The spare on the site holding least of the backup (none, first).
  Result<const NodeEntry*> Take(const std::string& why) {
    auto best =
        std::min_element(nodes.begin(), nodes.end(), [&](const NodeEntry* a, const NodeEntry* b) {
          return per_site[a->site] < per_site[b->site];
        });
    if (best == nodes.end()) {
      return FailedPrecondition(why +
                                " and no cluster node is free to take it: add a node to the "
                                "cluster file");
    }
    const NodeEntry* n = *best;
    ++per_site[n->site];
    nodes.erase(best);
    return n;
  }
};

Spares SparesOf(const ClusterConfig& config, const Manifest& m) {
  Spares s;
  std::set<std::string> holders;
  for (const auto& p : m.placement) {
    holders.insert(p.node_id);
    ++s.per_site[p.site];
  }
  for (const auto& n : config.nodes) {
    if (!holders.count(n.id)) s.nodes.push_back(&n);
  }
  return s;
}

}  // namespace

Result<RepairPlan> PlanRepair(const ClusterConfig& config, const SignedManifest& manifest,
                              const BackupHealth& health) {
  const Manifest& m = manifest.manifest();
  if (health.state == "lost") {
    return FailedPrecondition("backup " + BackupIdToText(m.backup_id) +
                              " is lost: " + std::to_string(health.good_fragments) +
                              " good fragments of k = " + std::to_string(m.k) + ", " +
                              std::to_string(health.good_shares) +
                              " good shares of t = " + std::to_string(m.t));
  }
  Spares spares = SparesOf(config, m);
  RepairPlan plan;
  for (const auto& f : health.fragments) {
    if (f.data_ok && f.share_ok) continue;
    if (f.reachable) {
      plan.moves.push_back({f.fragment, f.node});
      continue;
    }
    QV_ASSIGN_OR_RETURN(const NodeEntry* to, spares.Take("fragment " + std::to_string(f.fragment) +
                                                         " on " + f.node + " is unreachable"));
    plan.moves.push_back({f.fragment, to->id});
  }
  if (plan.moves.empty()) {
    return FailedPrecondition("backup " + BackupIdToText(m.backup_id) + " is healthy");
  }
  std::sort(plan.moves.begin(), plan.moves.end(),
            [](const RepairMove& a, const RepairMove& b) { return a.fragment < b.fragment; });
  return plan;
}

Result<RepairPlan> PlanDecommission(const ClusterConfig& config, const SignedManifest& manifest,
                                    const std::string& node) {
  const Manifest& m = manifest.manifest();
  Spares spares = SparesOf(config, m);
  for (const auto& p : m.placement) {
    if (p.node_id != node) continue;
    QV_ASSIGN_OR_RETURN(const NodeEntry* to,
                        spares.Take("fragment " + std::to_string(p.fragment) + " leaves " + node));
    return RepairPlan{{{p.fragment, to->id}}};
  }
  return NotFound("backup " + BackupIdToText(m.backup_id) + " places nothing on " + node);
}

namespace {

// Units streamed to a new holder per message.
constexpr uint64_t kSendBytes = 4u << 20;

}  // namespace

Result<RepairReport> RunRepair(ClusterSession& session, const Certificate& cert,
                               const RepairProgress& progress) {
  const double start = session.clock().MonotonicMs();
  const QuorumRequest& q = cert.request.request();
  if (q.operation != kOpRepair) {
    return InvalidArgument("the certificate is for " + q.operation + ", not repair");
  }
  if (session.key() == nullptr) return FailedPrecondition("a repair needs the coordinator key");
  const BackupId id = q.backup_id;
  std::vector<std::string> problems;
  QV_ASSIGN_OR_RETURN(SignedManifest newest, session.Manifest(id, &problems));
  // The manifest the request names: the newest, or (when this repair ran
  // before and was cut short, or a node was down) the one before the
  // revision this repair makes, from the nodes' history.
  SignedManifest current = newest;
  if (newest.Hash() != q.manifest_hash) {
    auto history = ManifestHistory(session, id);
    bool found = false;
    if (history.ok()) {
      for (auto& h : *history) {
        if (h.Hash() == q.manifest_hash) {
          current = h;
          found = true;
          break;
        }
      }
    }
    if (!found) {
      return FailedPrecondition("backup " + BackupIdToText(id) +
                                " has a newer manifest than the request names (revision " +
                                std::to_string(newest.manifest().revision) +
                                "): scrub and request again");
    }
  }
  const Manifest& m = current.manifest();
  QV_ASSIGN_OR_RETURN(RepairPlan plan, ParseRepairPlan(q.destination));
  QV_ASSIGN_OR_RETURN(
      Manifest next_m,
      ApplyRepairPlan(current, plan, [&](const std::string& n) -> std::optional<std::string> {
        const NodeEntry* e = session.config().FindNode(n);
        if (e == nullptr) return std::nullopt;
        return e->site;
      }));
  SignedManifest next = current;
  if (next_m.revision != m.revision) {
    // Ed25519 is deterministic: signing the same revision again gives the
    // same bytes, so a resumed repair installs what the first run did.
    QV_ASSIGN_OR_RETURN(next, SignedManifest::Sign(next_m, *session.key()));
  }
  if (newest.Hash() != current.Hash() && newest.Hash() != next.Hash()) {
    return FailedPrecondition("backup " + BackupIdToText(id) + " has a newer manifest (revision " +
                              std::to_string(newest.manifest().revision) +
                              ") than this repair makes: scrub and request again");
  }
  RepairReport report;
  report.id = id;
  report.revision = next.manifest().revision;

  // 1. The certificate, to every node the repair involves.
  std::set<std::string> involved;
  for (const auto& p : m.placement) involved.insert(p.node_id);
  for (const auto& mv : plan.moves) involved.insert(mv.node_id);
  const Bytes encoded_cert = cert.Encode();
  std::set<std::string> open;
  for (const auto& node : involved) {
    NodeCaller* c = session.caller(node);
    if (c == nullptr) {
      problems.push_back(node + ": unreachable");
      continue;
    }
    Request r;
    r.op = Op::kRepairOpen;
    r.backup_id = id;
    r.payload = encoded_cert;
    // A new holder has no manifest yet: it checks this one against the
    // request's manifest hash.
    for (const auto& mv : plan.moves) {
      if (mv.node_id == node) r.payload2 = current.encoded();
    }
    auto resp = CallChecked(*c, std::move(r));
    if (!resp.ok()) {
      problems.push_back(resp.status().message());
      continue;
    }
    open.insert(node);
  }
  for (const auto& mv : plan.moves) {
    if (!open.count(mv.node_id)) {
      std::string why;
      for (const auto& p : problems) why += "; " + p;
      return FailedPrecondition("new holder " + mv.node_id + " did not take the repair" + why);
    }
  }
  const RepairPlan approved = plan;
  // A new holder that already holds this repair's revision installed its
  // fragment and share whole (an earlier run): not rebuilt again.
  if (next.Hash() != current.Hash()) {
    std::vector<RepairMove> left;
    for (const auto& mv : plan.moves) {
      Request h;
      h.op = Op::kGetManifestHash;
      h.backup_id = id;
      auto resp = CallChecked(*session.caller(mv.node_id), std::move(h));
      const Digest want = next.Hash();
      if (resp.ok() && resp->payload.size() == want.size() &&
          std::equal(want.begin(), want.end(), resp->payload.begin())) {
        continue;
      }
      left.push_back(mv);
    }
    plan.moves = std::move(left);
  }

  // 2. Sources: k fragments the plan leaves in place, on nodes that took
  // the certificate, their leaves checked against the signed roots. A
  // source whose unit fails its leaf later is replaced by the next one.
  std::vector<const Placement*> candidates;
  std::vector<std::pair<std::string, uint32_t>> helper_pool;  // node, share index
  for (const auto& p : m.placement) {
    if (approved.Find(p.fragment) != nullptr || !open.count(p.node_id)) continue;
    candidates.push_back(&p);
    helper_pool.emplace_back(p.node_id, p.fragment + 1);
  }
  std::vector<std::unique_ptr<FragmentSource>> sources;
  std::vector<std::vector<Digest>> leaves;  // each source's, to check every unit against
  size_t next_candidate = 0;
  auto add_source = [&]() -> Status {
    while (next_candidate < candidates.size()) {
      const Placement& p = *candidates[next_candidate++];
      auto src = NewRemoteSource(session.caller(p.node_id), id, p.fragment, m.unit_size,
                                 m.stripe_count, session.executor());
      auto l = src->ReadLeaves();
      if (!l.ok() || MerkleRoot(*l) != m.fragment_roots[p.fragment]) {
        problems.push_back(p.node_id + ": leaves " +
                           (l.ok() ? "do not match the signed root" : l.status().message()));
        continue;
      }
      sources.push_back(std::move(src));
      leaves.push_back(std::move(l).value());
      return Status::Ok();
    }
    std::string why;
    for (const auto& pr : problems) why += "; " + pr;
    return FailedPrecondition("fewer than k = " + std::to_string(m.k) +
                              " intact fragments outside the plan answered" + why);
  };
  while (sources.size() < m.k) QV_RETURN_IF_ERROR(add_source());
  if (helper_pool.size() < m.t) {
    return FailedPrecondition(
        "only " + std::to_string(helper_pool.size()) +
        " share holders outside the plan answered; t = " + std::to_string(m.t) + " are needed");
  }

  // 3. Rebuild the planned fragments, ciphertext only, stripe by stripe.
  QV_ASSIGN_OR_RETURN(auto rs, ReedSolomon::New(static_cast<int>(m.k), static_cast<int>(m.m)));
  for (const auto& mv : plan.moves) {
    Request b;
    b.op = Op::kBeginFragment;
    b.backup_id = id;
    b.fragment = mv.fragment;
    b.a = m.unit_size;
    b.b = m.stripe_count;
    QV_RETURN_IF_ERROR(CallChecked(*session.caller(mv.node_id), std::move(b)).status());
  }
  const size_t n = m.n();
  const uint64_t per_send = std::max<uint64_t>(1, kSendBytes / m.unit_size);
  std::vector<Bytes> units(n, Bytes(m.unit_size));
  std::vector<Bytes> outgoing(plan.moves.size());
  const uint64_t total = m.stripe_count * uint64_t{m.unit_size} * plan.moves.size();
  for (uint64_t stripe = 0; stripe < m.stripe_count; ++stripe) {
    std::vector<bool> present(n, false), rebuild(n, false);
    for (size_t i = 0; i < sources.size();) {
      const uint32_t f = sources[i]->fragment();
      auto view = sources[i]->ViewUnit(stripe, MutableByteSpan(units[f]));
      if (!view.ok() || MerkleLeafHash(view->bytes) != leaves[i][stripe]) {
        // Routed around: the next intact fragment takes its place, from
        // this stripe on. Its own fragment needs a repair of its own.
        report.problems.push_back(
            sources[i]->name() + ": " +
            (view.ok() ? "unit " + std::to_string(stripe) + " does not match its signed leaf"
                       : view.status().message()) +
            "; fragment " + std::to_string(f) + " needs repair too");
        sources.erase(sources.begin() + static_cast<std::ptrdiff_t>(i));
        leaves.erase(leaves.begin() + static_cast<std::ptrdiff_t>(i));
        QV_RETURN_IF_ERROR(add_source());
        continue;  // the new source is read at the end of the list
      }
      if (view->bytes.data() != units[f].data()) {
        std::copy(view->bytes.begin(), view->bytes.end(), units[f].begin());
      }
      present[f] = true;
      report.bytes_read += m.unit_size;
      ++i;
    }
    for (const auto& mv : plan.moves) rebuild[mv.fragment] = true;
    std::vector<uint8_t*> ptrs(n);
    for (size_t f = 0; f < n; ++f) ptrs[f] = units[f].data();
    QV_RETURN_IF_ERROR(rs->Reconstruct(m.unit_size, ptrs, present, rebuild));
    const bool flush = (stripe + 1) % per_send == 0 || stripe + 1 == m.stripe_count;
    for (size_t i = 0; i < plan.moves.size(); ++i) {
      AppendBytes(outgoing[i], units[plan.moves[i].fragment]);
      if (!flush) continue;
      Request d;
      d.op = Op::kFragmentData;
      d.backup_id = id;
      d.fragment = plan.moves[i].fragment;
      report.bytes_rebuilt += outgoing[i].size();
      d.payload = std::move(outgoing[i]);
      outgoing[i] = Bytes();
      QV_RETURN_IF_ERROR(
          CallChecked(*session.caller(plan.moves[i].node_id), std::move(d)).status());
    }
    if (flush && progress) progress(report.bytes_rebuilt, total);
  }

  // 4. Each planned share, rebuilt on its new holder by t helpers, then
  // installed with its fragment (the new holder checks the fragment
  // against the signed root and the share against the commitments). When
  // the commitments refuse the share, a helper lied: the recovery is run
  // again with other helpers (every t of those that qualify, at most
  // kMaxHelperSets sets), and the helpers in every refused set but not in
  // the one that worked are named.
  constexpr size_t kMaxHelperSets = 16;
  std::vector<std::vector<size_t>> sets;  // indices into helper_pool
  {
    std::vector<size_t> pick(m.t);
    for (size_t i = 0; i < m.t; ++i) pick[i] = i;
    while (sets.size() < kMaxHelperSets) {
      sets.push_back(pick);
      // The next t-combination of helper_pool, in lexicographic order.
      size_t i = m.t;
      while (i > 0 && pick[i - 1] == helper_pool.size() - m.t + i - 1) --i;
      if (i == 0) break;
      ++pick[i - 1];
      for (size_t j = i; j < m.t; ++j) pick[j] = pick[j - 1] + 1;
    }
  }
  for (const auto& mv : plan.moves) {
    std::vector<std::set<std::string>> refused;
    Status last = Status::Ok();
    bool installed = false;
    for (const auto& set : sets) {
      RecoveryPlan rp;
      randombytes_buf(rp.id.data(), rp.id.size());
      for (size_t i : set) {
        rp.helpers.push_back(helper_pool[i].first);
        rp.helper_x.push_back(helper_pool[i].second);
      }
      rp.target = mv.node_id;
      const Bytes start_msg = EncodeRecoveryStart(rp);
      std::vector<std::string> parties = rp.helpers;
      parties.push_back(mv.node_id);
      for (const auto& node : parties) {
        Request r;
        r.op = Op::kShareRecoverStart;
        r.backup_id = id;
        r.fragment = mv.fragment;
        r.payload = start_msg;
        QV_RETURN_IF_ERROR(CallChecked(*session.caller(node), std::move(r)).status());
      }
      for (Op op : {Op::kShareRecoverDeal, Op::kShareRecoverForward}) {
        for (const auto& node : rp.helpers) {
          Request r;
          r.op = op;
          r.backup_id = id;
          r.payload.assign(rp.id.begin(), rp.id.end());
          QV_RETURN_IF_ERROR(CallChecked(*session.caller(node), std::move(r)).status());
        }
      }
      NodeCaller& c = *session.caller(mv.node_id);
      Request r;
      r.op = Op::kRepairInstall;
      r.backup_id = id;
      r.fragment = mv.fragment;
      QV_RETURN_IF_ERROR(AttachManifest(c, id, next.encoded(), &r));
      r.payload2.assign(rp.id.begin(), rp.id.end());
      last = CallChecked(c, std::move(r)).status();
      if (last.code() != StatusCode::kUnauthenticated) {
        QV_RETURN_IF_ERROR(last);
        installed = true;
        std::set<std::string> suspects;
        for (const auto& bad : refused) {
          for (const auto& h : bad) {
            if (std::find(rp.helpers.begin(), rp.helpers.end(), h) == rp.helpers.end()) {
              suspects.insert(h);
            }
          }
        }
        for (const auto& h : suspects) {
          report.problems.push_back(h + ": a share recovery it helped with gave share " +
                                    std::to_string(mv.fragment + 1) +
                                    " a value the commitments refuse; it is suspect");
        }
        break;
      }
      refused.emplace_back(rp.helpers.begin(), rp.helpers.end());
    }
    if (!installed) return last;
    ++report.shares_rebuilt;
  }
  if (next.Hash() != current.Hash()) {
    // Every node of the new placement, then those the plan moved a
    // fragment off (decommissioned): they wipe their copy.
    std::vector<Placement> tell = next.manifest().placement;
    for (const auto& p : m.placement) {
      const RepairMove* mv = approved.Find(p.fragment);
      if (mv != nullptr && mv->node_id != p.node_id) {
        Placement gone = p;
        gone.fragment = UINT32_MAX;  // not a new holder: told the revision
        tell.push_back(gone);
      }
    }
    for (const auto& p : tell) {
      if (p.fragment != UINT32_MAX && plan.Find(p.fragment) != nullptr) continue;
      NodeCaller* c = open.count(p.node_id) ? session.caller(p.node_id) : nullptr;
      if (c == nullptr) {
        report.problems.push_back(
            p.fragment == UINT32_MAX
                ? p.node_id +
                      ": unreachable, so whatever it still holds of the backup is not "
                      "wiped; run this repair again if it comes back"
                : p.node_id + ": did not take revision " +
                      std::to_string(next.manifest().revision) +
                      " (unreachable); run this repair again when it is back");
        continue;
      }
      Request r;
      r.op = Op::kRepairInstall;
      r.backup_id = id;
      r.payload = next.encoded();
      auto resp = CallChecked(*c, std::move(r));
      if (!resp.ok()) {
        report.problems.push_back(resp.status().message());
        continue;
      }
      p.fragment == UINT32_MAX ? ++report.nodes_wiped : ++report.nodes_updated;
    }
  }
  report.seconds = (session.clock().MonotonicMs() - start) / 1000.0;
  return report;
}

Result<std::vector<SignedManifest>> ManifestHistory(ClusterSession& session, const BackupId& id) {
  // Every revision any node keeps, by hash; a new holder keeps only the
  // revision it arrived with, its peers the ones before.
  std::map<Digest, SignedManifest> pool;
  std::optional<SignedManifest> head;
  std::string why = "no node answered";
  for (size_t i = 0; i < session.config().nodes.size(); ++i) {
    NodeCaller* c = session.caller(i);
    if (c == nullptr) continue;
    for (uint64_t skip = 0; skip < 4096; ++skip) {
      Request r;
      r.op = Op::kGetManifestHistory;
      r.backup_id = id;
      r.a = skip;
      auto resp = CallChecked(*c, std::move(r));
      if (!resp.ok()) {
        if (skip == 0) why = resp.status().message();
        break;
      }
      auto sm = SignedManifest::Parse(resp->payload, &session.config().coordinator);
      if (!sm.ok() || sm->manifest().backup_id != id) break;
      if (!head || sm->manifest().revision > head->manifest().revision) head = *sm;
      pool.emplace(sm->Hash(), std::move(sm).value());
    }
  }
  if (!head) return NotFound("no node holds a manifest of " + BackupIdToText(id) + ": " + why);
  // From the newest back, each revision the one its successor names.
  std::vector<SignedManifest> chain = {*head};
  while (chain.back().manifest().revision > 0) {
    auto it = pool.find(chain.back().manifest().previous);
    if (it == pool.end() ||
        it->second.manifest().revision + 1 != chain.back().manifest().revision) {
      break;
    }
    chain.push_back(it->second);
  }
  return chain;
}

}  // namespace qv
