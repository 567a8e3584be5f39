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
// reasons only. The records themselves, their encodings and the chain
// checks are node/audit_record.h.
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
#include "node/audit_record.h"

namespace qv {

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
  // How many entries of `kind` ("alert", ...) the log holds.
  Result<uint64_t> CountKind(const std::string& kind) const;
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

}  // namespace qv

#endif  // QV_NODE_AUDIT_LOG_H_
