// Audit records as data: the entries of a node's tamper-evident log, its
// signed checkpoints and the witness records peers countersign, with their
// canonical, versioned encodings, hashing and chain checks. Pure values and
// functions: no database (node/audit_log.h stores them in SQLite), so
// `qv audit verify`, the witness and sim/ check logs fetched from anywhere.
//
// Entry hash (BLAKE2b, crypto/kdf.h DomainHash), over base/wire.h fields:
//   v1 "quorumvault/audit-entry/v1": seq, time, kind, peer, backup,
//      request, detail, prev                      (entries written before v2)
//   v2 "quorumvault/audit-entry/v2": the same, then u32 n and n (key, value)
//      fields sorted by key, then prev
// Readers take facts from fields (AuditEvent::Get); `detail` is the line a
// person reads, and for v1 entries the only place they are.
#ifndef QV_NODE_AUDIT_RECORD_H_
#define QV_NODE_AUDIT_RECORD_H_

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/identity.h"

namespace qv {

using ChainHash = std::array<uint8_t, 32>;

inline constexpr size_t kMaxAuditField = 4096;  // bytes of any text field
inline constexpr size_t kMaxAuditFields = 16;   // structured fields per entry
inline constexpr size_t kMaxAuditKey = 64;

using AuditFields = std::vector<std::pair<std::string, std::string>>;

struct AuditEvent {
  std::string kind;         // "start", "backup-stored", "request", "approval", "release", ...
  std::string peer;         // who asked, if anyone
  std::string backup;       // backup id (hex), if any
  std::string request;      // request id (hex), if any
  std::string detail;       // human-readable: reason, custodians, reply key
  AuditFields fields = {};  // facts a reader checks (v2): requester, reply_key, ...

  // The value of field `key`, if the entry has it.
  std::optional<std::string> Get(std::string_view key) const;
};

struct AuditEntry {
  static constexpr uint32_t kVersion = 2;  // what Append writes
  uint32_t version = kVersion;
  uint64_t seq = 0;  // 1, 2, 3, ...
  int64_t time = 0;
  AuditEvent event;
  ChainHash prev{};  // hash of entry seq-1 (zeros for seq 1)
  ChainHash hash{};

  ChainHash ComputeHash() const;
};

// Sorted by key, duplicates and overlong keys dropped, at most
// kMaxAuditFields, values cut to kMaxAuditField: the form that is hashed.
AuditFields CanonicalFields(AuditFields fields);
// Fields as stored beside an entry: u32 n, then n (key, value) strings.
Bytes EncodeAuditFields(const AuditFields& fields);
Result<AuditFields> DecodeAuditFields(ByteSpan data);

struct Checkpoint {
  std::string node_id;
  uint64_t seq = 0;
  ChainHash head{};
  int64_t time = 0;
  Signature signature{};  // by the node, over kCheckpointContext | canonical fields

  Bytes SignedBytes() const;
  Status Verify(const PublicKey& node_key) const;
};

// A checkpoint of `subject` that `witness` checked and countersigned.
struct WitnessRecord {
  std::string witness;
  Checkpoint checkpoint;  // the subject's, with its signature
  Signature countersignature{};

  Bytes SignedBytes() const;
  Status Verify(const PublicKey& witness_key, const PublicKey& subject_key) const;
};

// Wire forms for fetching logs from a node. Entries are written as
// u32 0xFFFFFFFF | u32 2 | list (each with its version and fields); a list
// without that marker is the v1 form (no versions, no fields), still read.
Bytes EncodeEntries(const std::vector<AuditEntry>& entries);
Result<std::vector<AuditEntry>> DecodeEntries(ByteSpan data);
Bytes EncodeCheckpoints(const std::vector<Checkpoint>& checkpoints);
Result<std::vector<Checkpoint>> DecodeCheckpoints(ByteSpan data);
Bytes EncodeWitnessRecords(const std::vector<WitnessRecord>& records);
Result<std::vector<WitnessRecord>> DecodeWitnessRecords(ByteSpan data);

// How far an entry's time may fall behind the latest time before it (a
// clock stepped by NTP moves by less) before `VerifyAuditChain` flags it.
inline constexpr int64_t kAuditTimeTolerance = 120;

// Checks a whole fetched log: seqs 1..n in order, every link and hash,
// times that never go backwards by more than kAuditTimeTolerance, and
// every checkpoint (signature, within the log, equal to the chain's hash at
// its seq). Returns the problems found, first broken entry first; empty
// when intact.
std::vector<std::string> VerifyAuditChain(const std::vector<AuditEntry>& entries,
                                          const std::vector<Checkpoint>& checkpoints,
                                          const PublicKey& node_key);

}  // namespace qv

#endif  // QV_NODE_AUDIT_RECORD_H_
