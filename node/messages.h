// Requests and responses between coordinator/requesters and nodes, and
// between nodes, inside an authenticated channel message laid out as
//   payload (raw bytes) | header (base/wire.h, canonical) | u32 header length
// The bulk payload comes first so that decoding can turn the received buffer
// into the payload in place, and encoding can append the header to a moved-in
// payload: no copy of fragment data either way.
//
// Parsing is hardened for hostile input: every variable-size field is a
// bounded type whose loader checks the declared length against its limit
// and against what remains in the message before allocating, so a forged
// length cannot make a node allocate gigabytes. Decode errors are Status,
// never exceptions.
#ifndef QV_NODE_MESSAGES_H_
#define QV_NODE_MESSAGES_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

// 2: headers on the canonical wire codec (1 was a Boost binary archive).
inline constexpr uint32_t kProtocolVersion = 2;
inline constexpr size_t kMaxPayload = 24u << 20;
// Encoding appends the header after the payload. A producer of a bulk payload
// that reserves this much spare capacity has it encoded without a reallocation
// (and so without copying the payload).
inline constexpr size_t kHeaderReserve = 256;

enum class Op : uint8_t {
  kHealth = 1,
  kBeginFragment,    // backup_id, fragment, a = unit size, b = stripe count
  kFragmentData,     // payload = whole units, in order
  kPrepare,          // payload = signed manifest, payload2 = share (x || y) sealed to
                     //   the node's X25519 static key (crypto_box_seal), a = commit deadline
  kPublish,          // backup_id, payload = the coordinator's commit record
  kAbort,            // backup_id
  kGetManifest,      // backup_id, a = offset, b = max bytes (0: all, if it fits one message)
                     //   -> payload = be64 total size | that slice of the signed manifest
                     //   (b > 0), or the whole manifest (b = 0)
  kListBackups,      // -> ids
  kGetLeaves,        // backup_id, a = first leaf, b = max count (0: all, if they fit one
                     //   page) -> payload = leaf hashes, at most kLeavesPage
  kFetchUnits,       // backup_id, a = first unit, b = count -> payload = units
                     //   (only on a connection that presented a valid certificate)
  kRelease,          // backup_id, payload = certificate -> payload = share sealed to
                     //   the request's one-time key (crypto_box_seal)
  kGetAudit,         // a = first seq, b = max entries (at most kListPage) -> payload = entries
  kGetCheckpoints,   // a = first seq, b = max count (at most kListPage; 0: only the newest)
                     //   -> payload = this node's signed checkpoints from seq a on
  kGetWitnessed,     // a = records to skip, b = max count (at most kListPage) -> payload =
                     //   other nodes' checkpoints this node countersigned
  kReleaseReceipt,   // payload = EncodeReceipt: which nodes released a request, told to
                     //   each of them after the restore, for audit cross-checks
  kGetCommit,        // backup_id -> payload = phase byte (NodeStore::Phase) | commit record
  kManifestData,     // payload = the next piece of the signed manifest of the upload in
                     //   progress; a kPrepare with an empty payload then uses the pieces
  kPostDenial,       // backup_id, payload = certificate of the request and custodians'
                     //   denials only: the node keeps them (a denial is a veto)
  kGetManifestHash,  // backup_id -> payload = SHA-256 of the signed manifest this node
                     //   holds for it (any state past upload); asked by peers at prepare
  kScrub,            // backup_id, payload = scrub challenge -> payload = scrub answer
                     //   (coordinator/scrub.h: proofs of retrievability and of the share)
  // Repair (coordinator/repair.h). All but the node-to-node ones need a
  // kRepairOpen on the same connection first.
  kRepairOpen,           // backup_id, payload = certificate for "repair", payload2 = the
                         //   current signed manifest (for a node new to the backup)
  kShareRecoverStart,    // backup_id, fragment, payload = EncodeRecoveryStart
  kShareRecoverDeal,     // backup_id, payload = recovery id: a helper sends its summands
  kShareRecoverForward,  // backup_id, payload = recovery id: a helper sends its partial sum
  kShareSummand,         // node to node: payload = EncodeRecoveryValue
  kSharePartial,         // node to node: payload = EncodeRecoveryValue
  kRepairInstall,        // backup_id, fragment, payload = the new signed manifest (empty: the
                         //   kManifestData pieces), payload2 = recovery id or empty; with an
                         //   upload in progress, installs it; without, the manifest revision
  kGetManifestHistory,   // backup_id, a = revisions to skip (newest first) -> payload = that
                         //   revision's signed manifest, message = how many are kept
  kScrubCoverage,        // backup_id -> payload = EncodeCoverage (node/scrub_wire.h)
  kEnroll,               // payload = certificate enrolling a node key (quorum/enrollment.h)
                         //   -> message = "enrolled" or "already enrolled"
  // The ceremony through the cluster (issue 16, node/pending.h).
  kSubmitRequest,  // backup_id, payload = a signed restore request, kept as pending
  kListPending,    // payload empty (all) or a 32-byte request id -> payload =
                   //   EncodePendingList; a custodian sees those it may approve
  kPostApproval,   // backup_id, payload = the custodian's own approval or denial
};

// Scrub bounds: indices challenged per message, and units sent whole.
inline constexpr uint32_t kScrubMaxIndices = 1024;
inline constexpr uint32_t kScrubMaxUnits = 4;
// Bytes of fragment a node reads to answer one challenge (indices x unit
// size): a larger sample travels as several challenges.
inline constexpr uint64_t kScrubMaxReadBytes = 64ull << 20;

// Manifests travel in pieces of at most this much, in both directions.
inline constexpr size_t kManifestPage = 8u << 20;
// Leaf hashes per get-leaves answer (8 MiB), and items per audit list page:
// every list a node serves is paged, so none is limited by kMaxPayload.
inline constexpr uint64_t kLeavesPage = 256u << 10;
inline constexpr uint64_t kListPage = 4096;

// The receipt a restore sends every node that released for a request.
struct ReleaseReceipt {
  std::array<uint8_t, 32> request_id{};
  std::vector<std::string> released_by;  // node ids, at most 64
};
Bytes EncodeReceipt(const ReleaseReceipt& receipt);
Result<ReleaseReceipt> DecodeReceipt(ByteSpan data);

struct Request {
  uint32_t version = kProtocolVersion;
  Op op = Op::kHealth;
  std::array<uint8_t, 16> backup_id{};
  uint32_t fragment = 0;
  uint64_t a = 0, b = 0;
  Bytes payload, payload2;
};

struct Response {
  uint8_t code = 0;  // StatusCode
  std::string message;
  Bytes payload;
  std::vector<std::array<uint8_t, 16>> ids;
  std::string node_id;

  Status ToStatus() const;
  static Response FromStatus(const Status& s);
};

// The rvalue forms take over the payload / message buffer (hot paths).
Result<Bytes> EncodeRequest(Request&& r);
Result<Bytes> EncodeRequest(const Request& r);
Result<Request> DecodeRequest(Bytes&& message);
Result<Request> DecodeRequest(ByteSpan message);
Result<Bytes> EncodeResponse(Response&& r);
Result<Bytes> EncodeResponse(const Response& r);
Result<Response> DecodeResponse(Bytes&& message);
Result<Response> DecodeResponse(ByteSpan message);

std::string_view OpName(Op op);

}  // namespace qv

#endif  // QV_NODE_MESSAGES_H_
