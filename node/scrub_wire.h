// The scrub exchange (proofs of retrievability, issue 15): the scrubber's
// challenge and a node's answer, canonical (base/wire.h).
//
//   challenge: nonce[32] | u32 n | n x (u64 unit index | u8 want the unit)
//   answer:    u8 share proved | (proved: share proof[64] | else: str error)
//              | u32 n | n x item
//   item:      u64 index | u8 kind | kind 0: leaf[32], kind 1: blob unit,
//              kind 2: str why unreadable | u32 m | m x sibling[32]
//
// A node answers each index with the Merkle leaf hash it computes from the
// unit on its disk (kind 0) or the unit itself (kind 1, at most
// kScrubMaxUnits per challenge), and the inclusion proof from its stored
// leaves. The scrubber checks both against the fragment's root in the signed
// manifest: a node that kept its leaves but lost its data passes the hashes
// only until it is asked for a unit, which the scrubber picks at random.
#ifndef QV_NODE_SCRUB_WIRE_H_
#define QV_NODE_SCRUB_WIRE_H_

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/sha256.h"
#include "crypto/vss.h"
#include "manifest/manifest.h"

namespace qv {

struct ScrubChallenge {
  std::array<uint8_t, 32> nonce{};
  std::vector<std::pair<uint64_t, bool>> items;  // (unit index, want the unit itself)
};

struct ScrubItem {
  uint64_t index = 0;
  uint8_t kind = 0;  // 0 leaf hash, 1 the unit, 2 unreadable
  Digest leaf{};
  Bytes unit;
  std::string error;
  std::vector<Digest> proof;
};

struct ScrubAnswer {
  bool share_proved = false;
  ShareProof share_proof;
  std::string share_error;
  std::vector<ScrubItem> items;
};

Bytes EncodeScrubChallenge(const ScrubChallenge& c);
// How far scrubs have come through a backup's fragment on this node: a
// cursor that rotates through the units, so every unit is challenged
// within one cycle however small each scrub's sample (issue 15).
struct ScrubCoverage {
  uint64_t cursor = 0;        // the next unit of this cycle to cover
  uint64_t cycle = 0;         // full passes completed
  int64_t cycle_started = 0;  // unix seconds; 0 before the first scrub
  int64_t last_complete = 0;  // when the last full pass ended; 0: never
};

// kScrubCoverage's answer: be64 cursor | be64 stripes | be64 cycle |
// be64 cycle_started | be64 last_complete.
Bytes EncodeCoverage(const ScrubCoverage& c, uint64_t stripes);
Result<std::pair<ScrubCoverage, uint64_t>> DecodeCoverage(ByteSpan data);

// Refuses more than kScrubMaxIndices items or kScrubMaxUnits units.
Result<ScrubChallenge> DecodeScrubChallenge(ByteSpan data);
Bytes EncodeScrubAnswer(const ScrubAnswer& a);
Result<ScrubAnswer> DecodeScrubAnswer(ByteSpan data);
// What a node's share proof is bound to: the challenge, the node, the backup.
Bytes ScrubProofContext(const std::array<uint8_t, 32>& nonce, const std::string& node_id,
                        const BackupId& backup);

}  // namespace qv

#endif  // QV_NODE_SCRUB_WIRE_H_
