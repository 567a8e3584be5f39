#include "node/audit_log.h"

#include <algorithm>
#include <cstring>

#include "base/wire.h"
#include "crypto/kdf.h"
#include "node/sqlite_stmt.h"

namespace qv {

namespace {

constexpr std::string_view kEntryDomain = "quorumvault/audit-entry/v1";
constexpr std::string_view kCheckpointContext = "quorumvault/checkpoint/v1";
constexpr std::string_view kWitnessContext = "quorumvault/witness/v1";
constexpr size_t kMaxField = 4096;

void WriteCheckpoint(WireWriter& w, const Checkpoint& c) {
  w.Str(c.node_id).U64(c.seq).Fixed(c.head).I64(c.time).Fixed(c.signature);
}

Result<Checkpoint> ReadCheckpoint(WireReader& r) {
  Checkpoint c;
  QV_ASSIGN_OR_RETURN(c.node_id, r.Str(128));
  QV_ASSIGN_OR_RETURN(c.seq, r.U64());
  QV_ASSIGN_OR_RETURN(c.head, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(c.time, r.I64());
  QV_ASSIGN_OR_RETURN(c.signature, r.Fixed<kSignatureSize>());
  return c;
}

// A row of (seq, head, time, signature), as both checkpoint tables hold them.
Checkpoint CheckpointFromRow(Stmt& st, std::string node_id) {
  Checkpoint c;
  c.node_id = std::move(node_id);
  c.seq = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
  c.head = st.ColFixed<32>(1);
  c.time = sqlite3_column_int64(st.get(), 2);
  c.signature = st.ColFixed<kSignatureSize>(3);
  return c;
}

}  // namespace

ChainHash AuditEntry::ComputeHash() const {
  WireWriter w;
  w.U64(seq).I64(time).Str(event.kind).Str(event.peer).Str(event.backup).Str(event.request);
  w.Str(event.detail).Fixed(prev);
  return DomainHash(kEntryDomain, w.bytes());
}

Bytes Checkpoint::SignedBytes() const {
  WireWriter w;
  w.Str(node_id).U64(seq).Fixed(head).I64(time);
  return ContextMessage(kCheckpointContext, w.bytes());
}

Status Checkpoint::Verify(const PublicKey& node_key) const {
  // Entries count from 1: a checkpoint of entry 0 checkpoints nothing, and
  // every reader would index entry seq-1.
  if (seq == 0) return InvalidArgument("checkpoint at entry 0");
  if (!PlausibleUnix(time)) return InvalidArgument("checkpoint with an implausible time");
  return qv::VerifySignature(node_key, SignedBytes(), signature);
}

Bytes WitnessRecord::SignedBytes() const {
  WireWriter w;
  w.Str(witness);
  WriteCheckpoint(w, checkpoint);
  return ContextMessage(kWitnessContext, w.bytes());
}

Status WitnessRecord::Verify(const PublicKey& witness_key, const PublicKey& subject_key) const {
  QV_RETURN_IF_ERROR(checkpoint.Verify(subject_key));
  return qv::VerifySignature(witness_key, SignedBytes(), countersignature);
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::filesystem::path& file,
                                                 std::string node_id, const SigningKey* signer,
                                                 const Clock* clock, uint32_t checkpoint_every) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->node_id_ = std::move(node_id);
  log->signer_ = signer;
  log->clock_ = clock;
  log->every_ = std::max<uint32_t>(1, checkpoint_every);
  if (sqlite3_open_v2(file.c_str(), &log->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    return IoError(file.string() + ": cannot open the audit log");
  }
  QV_RETURN_IF_ERROR(log->Exec("PRAGMA journal_mode=WAL"));
  QV_RETURN_IF_ERROR(log->Exec("PRAGMA synchronous=FULL"));
  QV_RETURN_IF_ERROR(log->Exec(
      "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
      "kind TEXT NOT NULL, peer TEXT NOT NULL, backup TEXT NOT NULL, request TEXT NOT NULL, "
      "detail TEXT NOT NULL, prev BLOB NOT NULL, hash BLOB NOT NULL);"
      "CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER PRIMARY KEY, head BLOB NOT NULL, "
      "time INTEGER NOT NULL, signature BLOB NOT NULL);"
      "CREATE TABLE IF NOT EXISTS witnessed (subject TEXT NOT NULL, seq INTEGER NOT NULL, "
      "head BLOB NOT NULL, time INTEGER NOT NULL, signature BLOB NOT NULL, "
      "countersignature BLOB NOT NULL, PRIMARY KEY (subject, seq));"));
  // Resume from the stored head. If that row was tampered with, the next
  // entries chain from the tampered hash and verification names the spot.
  // A head that cannot be read is an error, never a fresh start at 0.
  Stmt st(log->db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) {
    log->seq_ = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
    log->head_ = st.ColFixed<32>(1);
  } else if (rc != SQLITE_DONE) {
    return IoError(file.string() + ": reading the audit head: " + sqlite3_errmsg(log->db_));
  }
  Stmt cp(log->db_, "SELECT MAX(seq) FROM checkpoints");
  if (sqlite3_step(cp.get()) != SQLITE_ROW) {
    return IoError(file.string() + ": reading the checkpoints: " + sqlite3_errmsg(log->db_));
  }
  log->checkpointed_ = static_cast<uint64_t>(sqlite3_column_int64(cp.get(), 0));
  return log;
}

AuditLog::~AuditLog() {
  if (db_ != nullptr) sqlite3_close(db_);
}

Status AuditLog::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return IoError("audit log: " + msg);
  }
  return Status::Ok();
}

Status AuditLog::Append(const AuditEvent& event, bool checkpoint) {
  return AppendAll({event}, checkpoint);
}

Status AuditLog::AppendAll(const std::vector<AuditEvent>& events, bool checkpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  if (signer_ == nullptr) checkpoint = false;
  if (events.size() == 1 && !checkpoint) return AppendLocked(events[0]);
  // The entries and the checkpoint of the last commit together: one
  // durable write (one fsync), all or none of them.
  QV_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  const uint64_t seq = seq_, checkpointed = checkpointed_;
  const ChainHash head = head_;
  Status st;
  for (const auto& e : events) {
    if (st.ok()) st = AppendLocked(e);
  }
  if (st.ok() && checkpoint) st = SignCheckpointLocked();
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    seq_ = seq, checkpointed_ = checkpointed, head_ = head;
  }
  return st;
}

Status AuditLog::AppendLocked(const AuditEvent& event) {
  AuditEntry e;
  e.seq = seq_ + 1;
  e.time = clock_->NowUnix();
  e.event = event;
  for (std::string* f :
       {&e.event.kind, &e.event.peer, &e.event.backup, &e.event.request, &e.event.detail}) {
    if (f->size() > kMaxField) f->resize(kMaxField);
  }
  e.prev = head_;
  e.hash = e.ComputeHash();
  Stmt st(db_, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.Int(1, static_cast<int64_t>(e.seq));
  st.Int(2, e.time);
  st.Text(3, e.event.kind);
  st.Text(4, e.event.peer);
  st.Text(5, e.event.backup);
  st.Text(6, e.event.request);
  st.Text(7, e.event.detail);
  st.Blob(8, e.prev);
  st.Blob(9, e.hash);
  if (sqlite3_step(st.get()) != SQLITE_DONE) {
    return IoError(std::string("audit log append: ") + sqlite3_errmsg(db_));
  }
  seq_ = e.seq;
  head_ = e.hash;
  if (seq_ - checkpointed_ >= every_) return SignCheckpointLocked();
  return Status::Ok();
}

Status AuditLog::SignCheckpoint() {
  std::lock_guard<std::mutex> lock(mu_);
  return SignCheckpointLocked();
}

Status AuditLog::SignCheckpointLocked() {
  if (seq_ == checkpointed_ || signer_ == nullptr) return Status::Ok();
  Checkpoint c{node_id_, seq_, head_, clock_->NowUnix(), {}};
  c.signature = signer_->Sign(c.SignedBytes());
  Stmt st(db_, "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)");
  st.Int(1, static_cast<int64_t>(c.seq));
  st.Blob(2, c.head);
  st.Int(3, c.time);
  st.Blob(4, c.signature);
  if (sqlite3_step(st.get()) != SQLITE_DONE) {
    return IoError(std::string("audit checkpoint: ") + sqlite3_errmsg(db_));
  }
  checkpointed_ = seq_;
  return Status::Ok();
}

uint64_t AuditLog::head_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

Result<std::vector<std::string>> AuditLog::BackupsStored() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT DISTINCT backup FROM audit WHERE kind = 'backup-stored'");
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(st.ColText(0));
  if (rc != SQLITE_DONE) return IoError(std::string("audit log: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> AuditLog::RequestsReleased() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT DISTINCT request, backup FROM audit WHERE kind IN ('release', 'retry')");
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW)
    out.emplace_back(st.ColText(0), st.ColText(1));
  if (rc != SQLITE_DONE) return IoError(std::string("audit log: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::vector<AuditEntry>> AuditLog::Entries(uint64_t from_seq, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT seq, time, kind, peer, backup, request, detail, prev, hash FROM audit "
          "WHERE seq >= ? ORDER BY seq LIMIT ?");
  st.Int(1, static_cast<int64_t>(from_seq));
  st.Int(2, static_cast<int64_t>(max));
  std::vector<AuditEntry> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    AuditEntry e;
    e.seq = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
    e.time = sqlite3_column_int64(st.get(), 1);
    e.event = {st.ColText(2), st.ColText(3), st.ColText(4), st.ColText(5), st.ColText(6)};
    e.prev = st.ColFixed<32>(7);
    e.hash = st.ColFixed<32>(8);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return IoError(std::string("audit log read: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::vector<Checkpoint>> AuditLog::Checkpoints(uint64_t from_seq, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT seq, head, time, signature FROM checkpoints WHERE seq >= ? ORDER BY seq "
          "LIMIT ?");
  st.Int(1, static_cast<int64_t>(std::min<uint64_t>(from_seq, INT64_MAX)));
  st.Int(2, static_cast<int64_t>(std::min<uint64_t>(max, INT64_MAX)));
  std::vector<Checkpoint> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    out.push_back(CheckpointFromRow(st, node_id_));
  }
  if (rc != SQLITE_DONE) return IoError(std::string("audit checkpoints: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::vector<Checkpoint>> AuditLog::Checkpoints() const { return Checkpoints(0, SIZE_MAX); }

Result<std::optional<Checkpoint>> AuditLog::NewestCheckpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT seq, head, time, signature FROM checkpoints ORDER BY seq DESC LIMIT 1");
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) return std::optional<Checkpoint>(CheckpointFromRow(st, node_id_));
  if (rc != SQLITE_DONE) return IoError(std::string("audit checkpoints: ") + sqlite3_errmsg(db_));
  return std::optional<Checkpoint>();
}

Status AuditLog::RecordWitness(const WitnessRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT OR IGNORE INTO witnessed VALUES (?, ?, ?, ?, ?, ?)");
  st.Text(1, r.checkpoint.node_id);
  st.Int(2, static_cast<int64_t>(r.checkpoint.seq));
  st.Blob(3, r.checkpoint.head);
  st.Int(4, r.checkpoint.time);
  st.Blob(5, r.checkpoint.signature);
  st.Blob(6, r.countersignature);
  if (sqlite3_step(st.get()) != SQLITE_DONE) {
    return IoError(std::string("witness record: ") + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Result<std::vector<WitnessRecord>> AuditLog::Witnessed(uint64_t offset, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT subject, seq, head, time, signature, countersignature FROM witnessed "
          "ORDER BY subject, seq LIMIT ? OFFSET ?");
  st.Int(1, static_cast<int64_t>(std::min<uint64_t>(max, INT64_MAX)));
  st.Int(2, static_cast<int64_t>(std::min<uint64_t>(offset, INT64_MAX)));
  std::vector<WitnessRecord> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    WitnessRecord r;
    r.witness = node_id_;
    r.checkpoint.node_id = st.ColText(0);
    r.checkpoint.seq = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
    r.checkpoint.head = st.ColFixed<32>(2);
    r.checkpoint.time = sqlite3_column_int64(st.get(), 3);
    r.checkpoint.signature = st.ColFixed<kSignatureSize>(4);
    r.countersignature = st.ColFixed<kSignatureSize>(5);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return IoError(std::string("witness records: ") + sqlite3_errmsg(db_));
  return out;
}

Result<std::vector<WitnessRecord>> AuditLog::Witnessed() const { return Witnessed(0, SIZE_MAX); }

std::optional<Checkpoint> AuditLog::LastWitnessed(const std::string& subject) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "SELECT seq, head, time, signature FROM witnessed WHERE subject = ? "
          "ORDER BY seq DESC LIMIT 1");
  st.Text(1, subject);
  if (sqlite3_step(st.get()) != SQLITE_ROW) return std::nullopt;
  return CheckpointFromRow(st, subject);
}

namespace {

// Lists on the wire: a u32 count, then the items. Every item takes at least
// 64 bytes, which bounds the count a reader believes before allocating.
template <typename T, typename WriteOne>
Bytes EncodeList(const std::vector<T>& items, WriteOne write_one) {
  WireWriter w;
  w.U32(static_cast<uint32_t>(items.size()));
  for (const auto& item : items) write_one(w, item);
  return w.Take();
}

template <typename T, typename ReadOne>
Result<std::vector<T>> DecodeList(ByteSpan data, std::string_view what, ReadOne read_one) {
  WireReader r(data);
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > data.size() / 64) return InvalidArgument(std::string(what) + " count out of range");
  std::vector<T> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(T item, read_one(r));
    out.push_back(std::move(item));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

}  // namespace

Bytes EncodeEntries(const std::vector<AuditEntry>& entries) {
  return EncodeList(entries, [](WireWriter& w, const AuditEntry& e) {
    w.U64(e.seq).I64(e.time).Str(e.event.kind).Str(e.event.peer).Str(e.event.backup);
    w.Str(e.event.request).Str(e.event.detail).Fixed(e.prev).Fixed(e.hash);
  });
}

Result<std::vector<AuditEntry>> DecodeEntries(ByteSpan data) {
  return DecodeList<AuditEntry>(data, "audit entry", [](WireReader& r) -> Result<AuditEntry> {
    AuditEntry e;
    QV_ASSIGN_OR_RETURN(e.seq, r.U64());
    QV_ASSIGN_OR_RETURN(e.time, r.I64());
    QV_ASSIGN_OR_RETURN(e.event.kind, r.Str(kMaxField));
    QV_ASSIGN_OR_RETURN(e.event.peer, r.Str(kMaxField));
    QV_ASSIGN_OR_RETURN(e.event.backup, r.Str(kMaxField));
    QV_ASSIGN_OR_RETURN(e.event.request, r.Str(kMaxField));
    QV_ASSIGN_OR_RETURN(e.event.detail, r.Str(kMaxField));
    QV_ASSIGN_OR_RETURN(e.prev, r.Fixed<32>());
    QV_ASSIGN_OR_RETURN(e.hash, r.Fixed<32>());
    return e;
  });
}

Bytes EncodeCheckpoints(const std::vector<Checkpoint>& checkpoints) {
  return EncodeList(checkpoints, WriteCheckpoint);
}

Result<std::vector<Checkpoint>> DecodeCheckpoints(ByteSpan data) {
  return DecodeList<Checkpoint>(data, "checkpoint", ReadCheckpoint);
}

Bytes EncodeWitnessRecords(const std::vector<WitnessRecord>& records) {
  return EncodeList(records, [](WireWriter& w, const WitnessRecord& rec) {
    w.Str(rec.witness);
    WriteCheckpoint(w, rec.checkpoint);
    w.Fixed(rec.countersignature);
  });
}

Result<std::vector<WitnessRecord>> DecodeWitnessRecords(ByteSpan data) {
  return DecodeList<WitnessRecord>(
      data, "witness record", [](WireReader& r) -> Result<WitnessRecord> {
        WitnessRecord rec;
        QV_ASSIGN_OR_RETURN(rec.witness, r.Str(128));
        QV_ASSIGN_OR_RETURN(rec.checkpoint, ReadCheckpoint(r));
        QV_ASSIGN_OR_RETURN(rec.countersignature, r.Fixed<kSignatureSize>());
        return rec;
      });
}

std::vector<std::string> VerifyAuditChain(const std::vector<AuditEntry>& entries,
                                          const std::vector<Checkpoint>& checkpoints,
                                          const PublicKey& node_key) {
  std::vector<std::string> problems;
  ChainHash prev{};
  int64_t latest = 0;  // the latest time of any entry so far
  bool clock_flagged = false;
  for (size_t i = 0; i < entries.size(); ++i) {
    const AuditEntry& e = entries[i];
    const std::string at = "entry " + std::to_string(i + 1);
    if (e.seq != i + 1) {
      problems.push_back(at + ": sequence number is " + std::to_string(e.seq) +
                         " (entry deleted or reordered)");
      break;
    }
    if (e.prev != prev) {
      problems.push_back(at +
                         ": does not link to the entry before it (edited, deleted or "
                         "reordered)");
      break;
    }
    if (e.ComputeHash() != e.hash) {
      problems.push_back(at + " (" + e.event.kind + "): contents do not match its hash (edited)");
      break;
    }
    prev = e.hash;
    // A node's clock that jumps back is how a node comes to release what
    // correct nodes refuse; its log shows it. The first such entry is named.
    if (!clock_flagged && (!PlausibleUnix(e.time) || e.time < latest - kAuditTimeTolerance)) {
      problems.push_back(at + " (" + e.event.kind + "): dated " +
                         (PlausibleUnix(e.time) && latest != 0
                              ? std::to_string(latest - e.time) + " s before an earlier entry"
                              : "at an implausible time " + std::to_string(e.time)) +
                         " (the node's clock went backwards)");
      clock_flagged = true;
    }
    latest = std::max(latest, e.time);
  }
  for (const auto& c : checkpoints) {
    const std::string at = "checkpoint at entry " + std::to_string(c.seq);
    if (Status v = c.Verify(node_key); !v.ok()) {
      problems.push_back(at + ": " +
                         (v.code() == StatusCode::kInvalidArgument
                              ? v.message()
                              : std::string("signature does not verify under the node's key")));
    } else if (c.seq > entries.size()) {
      problems.push_back(at + ": the log has only " + std::to_string(entries.size()) +
                         " entries (truncated)");
    } else if (entries[c.seq - 1].hash != c.head) {
      problems.push_back(at + ": signed head differs from the log's entry " +
                         std::to_string(c.seq) + " (history rewritten)");
    }
  }
  return problems;
}

}  // namespace qv
