// The node's tamper-evident audit log: an append-only table in its own
// SQLite file (audit.db, WAL mode). Entry i holds BLAKE2b(entry i-1), so
// editing, deleting or reordering an entry breaks the chain at that entry.
// Every `checkpoint_every` entries, and on Close(), the node signs a
// checkpoint of the head (seq, hash); truncating signed history is then
// visible. Other nodes countersign checkpoints they have checked (witness
// records, kept here for the peers), so even a history rewritten and
// re-signed with the node's stolen key disagrees with what they hold.
//
// AuditLog is thread-safe. Secrets never go in: callers pass ids, names and
// reasons only. The free functions check logs fetched from a node (for
// `qv audit verify`) without any database.
#ifndef QV_NODE_AUDIT_LOG_H_
#define QV_NODE_AUDIT_LOG_H_

#include <sqlite3.h>

#include <array>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/status.h"
#include "crypto/identity.h"

namespace qv {

using ChainHash = std::array<uint8_t, 32>;

struct AuditEvent {
  std::string kind;     // "start", "backup-stored", "request", "approval", "release", ...
  std::string peer;     // who asked, if anyone
  std::string backup;   // backup id (hex), if any
  std::string request;  // request id (hex), if any
  std::string detail;   // human-readable: reason, custodians, reply key
};

struct AuditEntry {
  uint64_t seq = 0;  // 1, 2, 3, ...
  int64_t time = 0;
  AuditEvent event;
  ChainHash prev{};  // hash of entry seq-1 (zeros for seq 1)
  ChainHash hash{};

  ChainHash ComputeHash() const;
};

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

class AuditLog {
 public:
  static Result<std::unique_ptr<AuditLog>> Open(const std::filesystem::path& file,
                                                std::string node_id, const SigningKey* signer,
                                                const Clock* clock, uint32_t checkpoint_every);
  ~AuditLog();

  // Appends and, every checkpoint_every entries (or now, with `checkpoint`,
  // in the same transaction), signs a checkpoint.
  Status Append(const AuditEvent& event, bool checkpoint = false);
  // Appends every event in one transaction (one fsync): all or none.
  Status AppendAll(const std::vector<AuditEvent>& events, bool checkpoint = false);
  Status SignCheckpoint();  // of the current head (no-op when already signed)

  Result<std::vector<AuditEntry>> Entries(uint64_t from_seq, size_t max) const;
  // Checkpoints from `from_seq` on, at most `max`, in order; or all of them.
  Result<std::vector<Checkpoint>> Checkpoints(uint64_t from_seq, size_t max) const;
  Result<std::vector<Checkpoint>> Checkpoints() const;
  Result<std::optional<Checkpoint>> NewestCheckpoint() const;
  uint64_t head_seq() const;
  // Backup ids (hex) this log recorded as stored (published); a hint for
  // re-indexing a node whose metadata database is gone.
  Result<std::vector<std::string>> BackupsStored() const;
  // (request id, backup id), hex, of every request this log recorded as
  // released: spent request ids a node must not lose with its database.
  Result<std::vector<std::pair<std::string, std::string>>> RequestsReleased() const;

  // Witnessing: `theirs` must be newer than anything held for that node.
  Status RecordWitness(const WitnessRecord& record);
  // Witness records held here, ordered by subject and entry: `max` of them
  // after skipping `offset`; or all of them.
  Result<std::vector<WitnessRecord>> Witnessed(uint64_t offset, size_t max) const;
  Result<std::vector<WitnessRecord>> Witnessed() const;
  std::optional<Checkpoint> LastWitnessed(const std::string& subject) const;
  const std::string& node_id() const { return node_id_; }
  const SigningKey& signer() const { return *signer_; }

 private:
  AuditLog() = default;
  Status Exec(const char* sql);
  Status SignCheckpointLocked();
  Status AppendLocked(const AuditEvent& event);
  sqlite3* db_ = nullptr;
  std::string node_id_;
  const SigningKey* signer_ = nullptr;
  const Clock* clock_ = nullptr;
  uint32_t every_ = 16;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
  ChainHash head_{};
  uint64_t checkpointed_ = 0;
};

// Wire forms for fetching logs from a node.
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

#endif  // QV_NODE_AUDIT_LOG_H_
