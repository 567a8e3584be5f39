// `qv scrub`: checks that every node still holds intact data and its key
// share, without trusting its word and without seeing the share (issue 15).
// Each node is challenged on random units of its fragment (node/scrub_wire.h):
// leaf hashes computed from its data with Merkle inclusion proofs, and a few
// whole units, all checked against the fragment's root in the signed
// manifest; and a proof of knowledge of its share against the manifest's
// Feldman commitments (crypto/vss.h). A backup is then healthy, degraded
// (a fragment or share missing or wrong, named), at risk (one more failure
// loses it) or lost (fewer than k good fragments or t good shares).
#ifndef QV_COORDINATOR_SCRUB_H_
#define QV_COORDINATOR_SCRUB_H_

#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "node/scrub_wire.h"

namespace qv {

struct ScrubOptions {
  double sample = 0.01;      // fraction of each fragment's units challenged (at least one)
  uint32_t whole_units = 2;  // of those, how many the node must send whole
};

struct FragmentHealth {
  uint32_t fragment = 0;
  std::string node;
  bool reachable = false;
  bool data_ok = false;   // every challenged unit proved
  bool share_ok = false;  // the share proof verified
  uint64_t units_checked = 0, units_whole = 0;
  // Where this node's rotation through the fragment stands after the scrub.
  bool coverage_known = false;
  ScrubCoverage coverage;
  std::vector<std::string> problems;
};

struct BackupHealth {
  BackupId id{};
  std::string name;
  uint32_t k = 0, m = 0, t = 0;
  uint64_t stripes = 0;  // units per fragment
  uint32_t unit_size = 0;
  std::vector<FragmentHealth> fragments;
  size_t good_fragments = 0, good_shares = 0;
  std::string state;  // "healthy", "degraded", "at risk", "lost"
};

// healthy: all n good; lost: fewer than k fragments or t shares; at risk:
// exactly k or t (one more failure loses it); degraded otherwise.
std::string HealthState(size_t good_fragments, size_t good_shares, size_t n, uint32_t k,
                        uint32_t t);

// The challenges one node is sent for `options.sample` of `m`'s units:
// distinct random units, each challenge within the node's bounds
// (kScrubMaxIndices, kScrubMaxReadBytes, kScrubMaxUnits whole).
// Half of them (rounded up) continue the node's rotation from `cursor`
// (its coverage), the rest are random.
std::vector<ScrubChallenge> MakeScrubChallenges(const Manifest& m, const ScrubOptions& options,
                                                uint64_t cursor = 0);

// Scrubs one backup through `session` (which must be the coordinator's).
Result<BackupHealth> ScrubBackup(ClusterSession& session, const BackupId& id,
                                 const ScrubOptions& options);

}  // namespace qv

#endif  // QV_COORDINATOR_SCRUB_H_
