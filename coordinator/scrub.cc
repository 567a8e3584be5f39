#include "coordinator/scrub.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "node/scrub_wire.h"

namespace qv {

std::string HealthState(size_t good_fragments, size_t good_shares, size_t n, uint32_t k,
                        uint32_t t) {
  if (good_fragments < k || good_shares < t) return "lost";
  if (good_fragments == n && good_shares == n) return "healthy";
  if (good_fragments == k || good_shares == t) return "at risk";
  return "degraded";
}

namespace {

uint64_t RandomBelow(uint64_t n) {
  uint64_t v = 0;
  randombytes_buf(&v, sizeof v);
  return v % n;  // the bias (n / 2^64) does not matter for sampling
}

// Distinct random unit indices, and which of them must come whole.
ScrubChallenge MakeChallenge(const Manifest& m, const ScrubOptions& o) {
  ScrubChallenge c;
  randombytes_buf(c.nonce.data(), c.nonce.size());
  const uint64_t stripes = m.stripe_count;
  const double want = std::ceil(std::clamp(o.sample, 0.0, 1.0) * static_cast<double>(stripes));
  const uint64_t count = std::clamp<uint64_t>(static_cast<uint64_t>(want), 1,
                                              std::min<uint64_t>(stripes, kScrubMaxIndices));
  std::set<uint64_t> picked;
  if (count == stripes) {
    for (uint64_t i = 0; i < stripes; ++i) picked.insert(i);
  } else {
    while (picked.size() < count) picked.insert(RandomBelow(stripes));
  }
  const uint64_t whole_budget = (16u << 20) / std::max<uint32_t>(m.unit_size, 1);
  uint64_t whole = std::min<uint64_t>({o.whole_units, kScrubMaxUnits, count, whole_budget});
  std::vector<uint64_t> order(picked.begin(), picked.end());
  std::set<size_t> whole_at;
  while (whole_at.size() < whole) whole_at.insert(static_cast<size_t>(RandomBelow(order.size())));
  for (size_t i = 0; i < order.size(); ++i) c.items.emplace_back(order[i], whole_at.count(i) > 0);
  return c;
}

void Check(const SignedManifest& sm, uint32_t fragment, const std::string& node,
           const ScrubChallenge& c, const ScrubAnswer& a, FragmentHealth* h) {
  const Manifest& m = sm.manifest();
  const Digest& root = m.fragment_roots[fragment];
  if (a.items.size() != c.items.size()) {
    h->problems.push_back("answered " + std::to_string(a.items.size()) + " of " +
                          std::to_string(c.items.size()) + " challenges");
  }
  bool data_ok = a.items.size() == c.items.size();
  for (size_t i = 0; i < std::min(a.items.size(), c.items.size()); ++i) {
    const ScrubItem& it = a.items[i];
    const auto [index, whole] = c.items[i];
    const std::string unit = "unit " + std::to_string(index);
    bool ok = false;
    if (it.index != index) {
      h->problems.push_back("answered unit " + std::to_string(it.index) + " for " + unit);
    } else if (it.kind == 2) {
      h->problems.push_back(unit + " unreadable: " + it.error);
    } else if (whole && it.kind != 1) {
      h->problems.push_back(unit + " was asked for whole and not sent");
    } else if (it.kind == 1 && it.unit.size() != m.unit_size) {
      h->problems.push_back(unit + " sent with the wrong size");
    } else {
      const Digest leaf = it.kind == 1 ? MerkleLeafHash(it.unit) : it.leaf;
      ok = VerifyMerkleProof(root, leaf, static_cast<size_t>(index),
                             static_cast<size_t>(m.stripe_count), it.proof);
      if (!ok) h->problems.push_back(unit + " does not match the fragment's signed root");
    }
    data_ok = data_ok && ok;
    ++h->units_checked;
    h->units_whole += it.kind == 1;
  }
  h->data_ok = data_ok;
  if (!a.share_proved) {
    h->problems.push_back("share unreadable: " + a.share_error);
  } else if (Status v =
                 VerifyShareProof(fragment + 1, a.share_proof,
                                  ScrubProofContext(c.nonce, node, m.backup_id), m.commitments);
             !v.ok()) {
    h->problems.push_back(v.message());
  } else {
    h->share_ok = true;
  }
}

}  // namespace

Result<BackupHealth> ScrubBackup(ClusterSession& session, const BackupId& id,
                                 const ScrubOptions& options) {
  std::vector<std::string> problems;
  QV_ASSIGN_OR_RETURN(SignedManifest sm, session.Manifest(id, &problems));
  const Manifest& m = sm.manifest();
  BackupHealth out;
  out.id = id;
  out.name = m.artifact_name;
  out.k = m.k;
  out.m = m.m;
  out.t = m.t;
  for (const auto& p : m.placement) {
    FragmentHealth h;
    h.fragment = p.fragment;
    h.node = p.node_id;
    const NodeEntry* node = session.config().FindNode(p.node_id);
    NodeCaller* caller =
        node == nullptr ? nullptr
                        : session.caller(static_cast<size_t>(node - session.config().nodes.data()));
    if (caller == nullptr || p.fragment >= m.fragment_roots.size()) {
      h.problems.push_back(node == nullptr ? "not in the cluster file" : "unreachable");
      out.fragments.push_back(std::move(h));
      continue;
    }
    const ScrubChallenge c = MakeChallenge(m, options);
    Request r;
    r.op = Op::kScrub;
    r.backup_id = id;
    r.payload = EncodeScrubChallenge(c);
    auto resp = CallChecked(*caller, std::move(r));
    if (!resp.ok()) {
      h.reachable = resp.status().code() != StatusCode::kIoError;
      h.problems.push_back(resp.status().message());
    } else {
      h.reachable = true;
      auto answer = DecodeScrubAnswer(resp->payload);
      if (!answer.ok()) {
        h.problems.push_back("unreadable answer: " + answer.status().message());
      } else {
        Check(sm, p.fragment, p.node_id, c, *answer, &h);
      }
    }
    out.good_fragments += h.data_ok;
    out.good_shares += h.share_ok;
    out.fragments.push_back(std::move(h));
  }
  out.state = HealthState(out.good_fragments, out.good_shares, m.placement.size(), m.k, m.t);
  return out;
}

}  // namespace qv
