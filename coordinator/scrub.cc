#include "coordinator/scrub.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <optional>
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

// The units to challenge: half (rounded up) the next ones in rotation from
// the node's coverage cursor, so every unit comes up within a cycle, and
// the rest distinct random ones among all others (Floyd's sampling: no
// rejection loop), so a node cannot learn which units it will be asked
// about. In order.
std::vector<uint64_t> PickUnits(uint64_t stripes, double sample, uint64_t cursor) {
  const double want = std::ceil(std::clamp(sample, 0.0, 1.0) * static_cast<double>(stripes));
  const uint64_t count = std::clamp<uint64_t>(static_cast<uint64_t>(want), 1, stripes);
  const uint64_t rotating = (count + 1) / 2;
  cursor %= stripes;
  std::set<uint64_t> picked;
  for (uint64_t i = 0; i < rotating; ++i) picked.insert((cursor + i) % stripes);
  // Random ones among the other stripes - rotating units, which start
  // right after the rotating run.
  const uint64_t others = stripes - rotating;
  std::set<uint64_t> drawn;
  for (uint64_t j = others - (count - rotating); j < others; ++j) {
    const uint64_t v = RandomBelow(j + 1);
    drawn.insert(drawn.count(v) ? j : v);
  }
  for (uint64_t d : drawn) picked.insert((cursor + rotating + d) % stripes);
  return {picked.begin(), picked.end()};
}

}  // namespace

std::vector<ScrubChallenge> MakeScrubChallenges(const Manifest& m, const ScrubOptions& o,
                                                uint64_t cursor) {
  const std::vector<uint64_t> units = PickUnits(m.stripe_count, o.sample, cursor);
  const uint64_t per_read =
      std::max<uint64_t>(1, kScrubMaxReadBytes / std::max<uint32_t>(m.unit_size, 1));
  const uint64_t per = std::min<uint64_t>(kScrubMaxIndices, per_read);
  const uint64_t batches = (units.size() + per - 1) / per;
  const uint64_t whole_budget = (16u << 20) / std::max<uint32_t>(m.unit_size, 1);
  const uint64_t whole =
      std::min<uint64_t>({o.whole_units, kScrubMaxUnits * batches, units.size(), whole_budget});
  std::set<size_t> whole_at;
  while (whole_at.size() < whole) whole_at.insert(static_cast<size_t>(RandomBelow(units.size())));
  std::vector<ScrubChallenge> out;
  uint32_t whole_in_batch = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    if (out.empty() || out.back().items.size() >= per) {
      out.emplace_back();
      randombytes_buf(out.back().nonce.data(), out.back().nonce.size());
      whole_in_batch = 0;
    }
    const bool w = whole_at.count(i) > 0 && whole_in_batch < kScrubMaxUnits;
    whole_in_batch += w;
    out.back().items.emplace_back(units[i], w);
  }
  return out;
}

namespace {

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
  out.stripes = m.stripe_count;
  out.unit_size = m.unit_size;
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
    // Every challenge must pass; the first one that cannot be asked or
    // read ends this node's scrub.
    h.data_ok = true;
    h.share_ok = true;
    auto coverage = [&]() -> std::optional<ScrubCoverage> {
      Request q;
      q.op = Op::kScrubCoverage;
      q.backup_id = id;
      auto resp = CallChecked(*caller, std::move(q));
      if (!resp.ok()) return std::nullopt;
      auto c = DecodeCoverage(resp->payload);
      if (!c.ok() || c->second != m.stripe_count) return std::nullopt;
      return c->first;
    };
    const std::optional<ScrubCoverage> before = coverage();
    for (const ScrubChallenge& c : MakeScrubChallenges(m, options, before ? before->cursor : 0)) {
      Request r;
      r.op = Op::kScrub;
      r.backup_id = id;
      r.payload = EncodeScrubChallenge(c);
      auto resp = CallChecked(*caller, std::move(r));
      auto answer =
          resp.ok() ? DecodeScrubAnswer(resp->payload) : Result<ScrubAnswer>(resp.status());
      if (!resp.ok()) {
        h.reachable = resp.status().code() != StatusCode::kIoError;
        h.problems.push_back(resp.status().message());
      } else if (!answer.ok()) {
        h.reachable = true;
        h.problems.push_back("unreadable answer: " + answer.status().message());
      }
      if (!answer.ok()) {
        h.data_ok = h.share_ok = false;
        break;
      }
      h.reachable = true;
      FragmentHealth one;
      Check(sm, p.fragment, p.node_id, c, *answer, &one);
      h.data_ok = h.data_ok && one.data_ok;
      h.share_ok = h.share_ok && one.share_ok;
      h.units_checked += one.units_checked;
      h.units_whole += one.units_whole;
      // A problem said by every challenge (an unreadable share) once.
      for (auto& pr : one.problems) {
        if (std::find(h.problems.begin(), h.problems.end(), pr) == h.problems.end()) {
          h.problems.push_back(std::move(pr));
        }
      }
      if (h.problems.size() > 64) break;  // enough to name what is wrong
    }
    if (h.reachable) {
      if (auto after = coverage()) {
        h.coverage = *after;
        h.coverage_known = true;
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
