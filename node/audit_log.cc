#include "node/audit_log.h"

#include <algorithm>
#include <cstring>

#include "base/wire.h"
#include "crypto/kdf.h"
#include "node/sqlite_stmt.h"

namespace qv {

namespace {

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
  // Entries with structured fields (audit_record.h, v2) keep them in a
  // column older logs lack; their rows stay v1 (fields NULL).
  {
    Stmt probe(log->db_, "SELECT fields FROM audit LIMIT 0");
    if (!probe.ok()) QV_RETURN_IF_ERROR(log->Exec("ALTER TABLE audit ADD COLUMN fields BLOB"));
  }
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
    if (f->size() > kMaxAuditField) f->resize(kMaxAuditField);
  }
  e.event.fields = CanonicalFields(std::move(e.event.fields));
  e.prev = head_;
  e.hash = e.ComputeHash();
  Stmt st(db_,
          "INSERT INTO audit (seq, time, kind, peer, backup, request, detail, prev, hash, fields) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.Int(1, static_cast<int64_t>(e.seq));
  st.Int(2, e.time);
  st.Text(3, e.event.kind);
  st.Text(4, e.event.peer);
  st.Text(5, e.event.backup);
  st.Text(6, e.event.request);
  st.Text(7, e.event.detail);
  st.Blob(8, e.prev);
  st.Blob(9, e.hash);
  st.Blob(10, EncodeAuditFields(e.event.fields));
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

Result<uint64_t> AuditLog::CountKind(const std::string& kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT COUNT(*) FROM audit WHERE kind = ?");
  st.Text(1, kind);
  if (sqlite3_step(st.get()) != SQLITE_ROW) {
    return IoError(std::string("audit log: ") + sqlite3_errmsg(db_));
  }
  return static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
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
          "SELECT seq, time, kind, peer, backup, request, detail, prev, hash, fields FROM audit "
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
    // NULL: a row written before fields existed, hashed as v1.
    if (sqlite3_column_type(st.get(), 9) == SQLITE_NULL) {
      e.version = 1;
    } else {
      const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(st.get(), 9));
      auto f =
          DecodeAuditFields(ByteSpan(p, static_cast<size_t>(sqlite3_column_bytes(st.get(), 9))));
      // Unreadable fields are kept as none: the hash then no longer matches
      // and verification names the entry.
      if (f.ok()) e.event.fields = std::move(f).value();
    }
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

}  // namespace qv
