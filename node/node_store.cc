#include "node/node_store.h"

#include <sodium.h>
#include <sqlite3.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <tuple>

#include "base/clock.h"
#include "crypto/kdf.h"
#include "crypto/secretbox.h"
#include "manifest/commit_record.h"
#include "node/share_seal.h"
#include "node/sqlite_stmt.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

constexpr size_t kDirectAlign = 4096;
constexpr size_t kDirectBuffer = 4u << 20;
constexpr uint64_t kMaxFetch = 16u << 20;
constexpr size_t kGeometryCache = 4096;

// RAII prepared statement.

}  // namespace

Result<std::unique_ptr<NodeStore>> NodeStore::Open(const fs::path& data_dir, SecretBytes master_key,
                                                   std::string node_id, PublicKey coordinator,
                                                   const RecoveryHints* hints, NodeStoreEnv env) {
  if (env.clock == nullptr) return InvalidArgument("node store needs a clock");
  if (master_key.size() != kSecretBoxKeySize) return InvalidArgument("master key must be 32 bytes");
  std::unique_ptr<NodeStore> s(new NodeStore());
  s->dir_ = data_dir;
  s->master_ = std::move(master_key);
  s->node_id_ = std::move(node_id);
  s->coordinator_ = coordinator;
  s->env_ = env;
  std::error_code ec;
  fs::create_directories(data_dir / "staging", ec);
  fs::create_directories(data_dir / "backups", ec);
  if (ec) return IoError(data_dir.string() + ": " + ec.message());
  const fs::path db = data_dir / "meta.db";
  if (sqlite3_open_v2(db.c_str(), &s->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return SqlError(s->db_, "open " + db.string());
  }
  sqlite3_busy_timeout(s->db_, 5000);
  QV_RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  QV_RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS backups(id TEXT PRIMARY KEY, fragment INTEGER NOT NULL, "
              "state TEXT NOT NULL, unit_size INTEGER NOT NULL, stripes INTEGER NOT NULL, "
              "updated INTEGER NOT NULL)"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS used_requests(id TEXT PRIMARY KEY, backup TEXT NOT NULL, "
              "time INTEGER NOT NULL)"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS request_retries(id TEXT PRIMARY KEY, "
              "count INTEGER NOT NULL)"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL)"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS denials(request TEXT NOT NULL, custodian TEXT NOT NULL, "
              "PRIMARY KEY(request, custodian))"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS pending(id TEXT PRIMARY KEY, deadline INTEGER NOT NULL, "
              "promised INTEGER NOT NULL)"));
  // Restore requests submitted through the cluster and the votes posted
  // for them (issue 16, node/pending.h), until they expire.
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS ceremony(id TEXT PRIMARY KEY, backup TEXT NOT NULL, "
              "request BLOB NOT NULL, received INTEGER NOT NULL, expires INTEGER NOT NULL)"));
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS ceremony_votes(request TEXT NOT NULL, custodian TEXT NOT "
              "NULL, approval BLOB NOT NULL, PRIMARY KEY(request, custodian))"));
  // Where scrubs have reached in each backup's fragment (issue 15).
  QV_RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS scrub_coverage(id TEXT PRIMARY KEY, cursor INTEGER NOT "
              "NULL, cycle INTEGER NOT NULL, started INTEGER NOT NULL, last_complete INTEGER NOT "
              "NULL)"));

  // Crash recovery: an upload that never reached Prepare is discarded (the
  // node knows it as its own aborted upload: staging data only). A backup
  // folder the database does not know (a crash between the rename and the
  // row, or meta.db lost) is never deleted: it is re-indexed from its own
  // signed manifest when complete and valid, else moved to quarantine/.
  QV_RETURN_IF_ERROR(s->Exec("DELETE FROM backups WHERE state = 'uploading'"));
  // A wipe cut short (decommission, node_store_repair.cc) is finished.
  QV_RETURN_IF_ERROR(s->FinishWipes());
  for (auto& e : fs::directory_iterator(data_dir / "staging", ec)) {
    RemoveAllQuietly(e.path());
    ++s->cleaned_;
  }
  for (auto& e : fs::directory_iterator(data_dir / "backups", ec)) {
    auto id = BackupIdFromText(e.path().filename().string());
    if (id.ok() && s->Find(*id).ok()) continue;
    Status st = id.ok() ? s->Reindex(*id, e.path(), hints) : InvalidArgument("not a backup id");
    if (st.ok()) continue;
    fs::path q = data_dir / "quarantine" / (e.path().filename().string() + "-" + RandomTag());
    fs::create_directories(q.parent_path(), ec);
    if (::rename(e.path().c_str(), q.c_str()) != 0) {
      return ErrnoError("quarantine " + e.path().string());
    }
    s->recovery_.push_back("quarantined " + q.string() + ": " + st.message());
  }
  // Shares sealed before they were bound to their manifest (format 1) are
  // sealed again, bound to the manifest beside them now.
  int migrated = 0;
  for (const auto& b : s->List()) {
    auto sealed = ReadFileBytes(s->BackupDir(b.id) / "share.sealed", 4096);
    if (!sealed.ok() || IsBoundShareFile(*sealed)) continue;
    QV_RETURN_IF_ERROR(s->MigrateShare(b.id, b.fragment)
                           .WithContext("migrating the share of " + BackupIdToText(b.id)));
    ++migrated;
  }
  if (migrated > 0) {
    s->recovery_.push_back("sealed " + std::to_string(migrated) +
                           " share(s) again, bound to their manifests (format 2)");
  }
  if (hints != nullptr) {
    for (const auto& [request, backup] : hints->spent) {
      Stmt st(s->db_, "INSERT OR IGNORE INTO used_requests VALUES (?, ?, 0)");
      st.Text(1, request);
      st.Text(2, BackupIdToText(backup));
      if (sqlite3_step(st.get()) != SQLITE_DONE)
        return SqlError(s->db_, "restoring spent requests");
    }
    if (!hints->spent.empty()) {
      s->recovery_.push_back("restored " + std::to_string(hints->spent.size()) +
                             " spent request id(s) from the audit log");
    }
  }
  // After re-indexing, so a lost meta.db (and with it the key-check value)
  // still proves the key on a recovered share.
  QV_RETURN_IF_ERROR(s->CheckMasterKey());
  return s;
}

// A folder with a complete, signed backup placed on this node becomes a row
// again: published if its commit record (or the audit log's hint) says so, else
// prepared. The share is not opened here; CheckMasterKey proves the key.
Status NodeStore::Reindex(const BackupId& id, const fs::path& dir, const RecoveryHints* hints) {
  QV_ASSIGN_OR_RETURN(Bytes encoded, ReadFileBytes(dir / "manifest", kMaxManifestSize));
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
  const qv::Manifest& m = sm.manifest();
  if (m.backup_id != id)
    return Corruption("its manifest is for backup " + BackupIdToText(m.backup_id));
  const Placement* mine = nullptr;
  for (const auto& p : m.placement) {
    if (p.node_id == node_id_) mine = &p;
  }
  if (mine == nullptr) return PermissionDenied("its manifest places nothing on " + node_id_);
  std::error_code ec;
  const uint64_t want = m.stripe_count * m.unit_size;
  if (fs::file_size(dir / "fragment", ec) != want || ec) {
    return Corruption("fragment is missing or not " + std::to_string(want) + " bytes");
  }
  QV_ASSIGN_OR_RETURN(Bytes leaf_bytes, ReadFileBytes(dir / "leaves", m.stripe_count * 32));
  if (leaf_bytes.size() != m.stripe_count * 32) return Corruption("leaves are incomplete");
  std::vector<Digest> leaves(m.stripe_count);
  for (uint64_t i = 0; i < m.stripe_count; ++i) {
    std::copy_n(leaf_bytes.begin() + i * 32, 32, leaves[i].begin());
  }
  if (MerkleRoot(leaves) != m.fragment_roots[mine->fragment]) {
    return Corruption("leaves do not match the signed Merkle root");
  }
  if (!fs::is_regular_file(dir / "share.sealed", ec)) return Corruption("sealed share is missing");
  bool published = false;
  if (auto rec = ReadFileBytes(dir / "commit", 4096); rec.ok()) {
    auto parsed = CommitRecord::Parse(*rec);
    auto chain = HistoryIn(dir);
    published =
        parsed.ok() && chain.ok() && parsed->Verify(coordinator_, id, chain->back().Hash()).ok();
  }
  // A repair installed it whole (Upload::Install): published from the start.
  published |= m.revision > 0 && fs::exists(dir / "installed", ec);
  published |= hints != nullptr && hints->published.count(id) > 0;
  const std::string state = published ? "published" : "prepared";
  if (!published) {
    // Its deadline as the folder recorded it (long past if unreadable: then
    // the peers decide at once).
    int64_t deadline = 0;
    if (auto d = ReadFileBytes(dir / "deadline", 32); d.ok()) {
      deadline = std::atoll(std::string(d->begin(), d->end()).c_str());
      // Read from disk: bounded before anything adds to it.
      if (!PlausibleUnix(deadline)) deadline = 0;
    }
    QV_RETURN_IF_ERROR(SetPending(id, deadline));
  }
  QV_RETURN_IF_ERROR(
      SetState(id, mine->fragment, state, m.unit_size, static_cast<int64_t>(m.stripe_count)));
  recovery_.push_back("recovered backup " + BackupIdToText(id) + " (" + state +
                      ") from its signed manifest");
  return Status::Ok();
}

NodeStore::~NodeStore() {
  if (db_ != nullptr) sqlite3_close(db_);
}

Status NodeStore::Exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown";
    sqlite3_free(err);
    return IoError("metadata database: " + m);
  }
  return Status::Ok();
}

fs::path NodeStore::BackupDir(const BackupId& id) const {
  return dir_ / "backups" / BackupIdToText(id);
}

Result<StoredBackup> NodeStore::Find(const BackupId& id) const {
  Stmt st(db_, "SELECT fragment, state FROM backups WHERE id = ?");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, BackupIdToText(id));
  if (sqlite3_step(st.get()) != SQLITE_ROW)
    return NotFound("backup " + BackupIdToText(id) + " is not on this node");
  StoredBackup b;
  b.id = id;
  b.fragment = static_cast<uint32_t>(sqlite3_column_int64(st.get(), 0));
  b.state = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));
  return b;
}

Status NodeStore::SetState(const BackupId& id, uint32_t fragment, const std::string& state,
                           int64_t unit, int64_t stripes) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "INSERT INTO backups(id, fragment, state, unit_size, stripes, updated) "
          "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
          "updated = excluded.updated");
  if (!st.ok()) return SqlError(db_, "prepare");
  st.Text(1, BackupIdToText(id));
  st.Int(2, fragment);
  st.Text(3, state);
  st.Int(4, unit);
  st.Int(5, stripes);
  st.Int(6, env_.clock->NowUnix());
  if (sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(db_, "write");
  return Status::Ok();
}

Result<std::unique_ptr<Upload>> NodeStore::Begin(const BackupId& id, uint32_t fragment,
                                                 uint32_t unit_size, uint64_t stripes,
                                                 bool repair) {
  if (unit_size == 0 || unit_size > kMaxUnitSize || stripes == 0 || stripes > (1ull << 32)) {
    return InvalidArgument("upload geometry out of range");
  }
  // What the upload will take (units and their leaf hashes), against the
  // free space less a reserve and less what uploads in progress will take,
  // before any byte moves: a declared size the disk cannot hold is refused
  // now, not after hours of transfer.
  uint64_t need = 0;
  bool in_place = false;
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "begin"));
  if (__builtin_mul_overflow(uint64_t{unit_size} + 32, stripes, &need)) {
    return InvalidArgument("upload size overflows");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto held = Find(id); held.ok() && !repair) {
      return AlreadyExists("backup " + BackupIdToText(id) + " already on this node");
    } else if (held.ok() && (held->state != "published" || held->fragment != fragment)) {
      return FailedPrecondition("backup " + BackupIdToText(id) + " is " + held->state +
                                " here with fragment " + std::to_string(held->fragment) +
                                ", not published with fragment " + std::to_string(fragment));
    } else if (held.ok()) {
      in_place = true;
    }
    struct statvfs v {};
    if (::statvfs(dir_.c_str(), &v) != 0) return ErrnoError("statvfs " + dir_.string());
    const uint64_t free_bytes = uint64_t{v.f_bavail} * v.f_frsize;
    const uint64_t reserve =
        std::max<uint64_t>(kMinFreeReserve, uint64_t{v.f_blocks} * v.f_frsize / 100);
    const uint64_t usable = free_bytes > reserve + reserved_ ? free_bytes - reserve - reserved_ : 0;
    if (need > usable) {
      return Status(StatusCode::kFailedPrecondition,
                    "not enough space for this fragment: it needs " + std::to_string(need) +
                        " bytes, " + std::to_string(usable) + " are free beyond the " +
                        std::to_string(reserve) + "-byte reserve and uploads in progress");
    }
    reserved_ += need;
  }
  fs::path dir = dir_ / "staging" / BackupIdToText(id);
  std::error_code ec;
  if (!fs::create_directory(dir, ec))
    return AlreadyExists("an upload of this backup is in progress");
  // Fragments bypass the page cache when units are block-aligned: a node
  // writes gigabytes it will rarely read back soon, and copying them into
  // fresh cache pages costs more CPU than the hashing that checks them.
  bool direct = unit_size % kDirectAlign == 0;
  Result<std::unique_ptr<File>> f = FailedPrecondition("not tried");
  if (direct) f = File::CreateNewDirect(dir / "fragment", 0600);
  if (!f.ok() && f.status().code() == StatusCode::kFailedPrecondition) {
    direct = false;  // unaligned units, or a filesystem without O_DIRECT
    f = File::CreateNew(dir / "fragment", 0600);
  }
  if (!f.ok()) {
    RemoveAllQuietly(dir);
    return f.status();
  }
  // An in-place repair keeps the published row (the old fragment is still
  // served) until Install swaps the files.
  Status s = in_place
                 ? Status::Ok()
                 : SetState(id, fragment, "uploading", unit_size, static_cast<int64_t>(stripes));
  if (!s.ok()) {
    RemoveAllQuietly(dir);
    return s;
  }
  std::unique_ptr<Upload> up(
      new Upload(this, id, fragment, unit_size, stripes, dir, std::move(f).value()));
  up->reserved_ = need;
  if (direct) {
    up->direct_.reset(static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, kDirectBuffer)));
    if (!up->direct_) return Internal("cannot allocate the aligned write buffer");
  }
  return up;
}

Upload::~Upload() {
  {
    std::lock_guard<std::mutex> lock(store_->mu_);
    store_->reserved_ -= reserved_;
  }
  if (!prepared_) {
    file_.reset();
    RemoveAllQuietly(dir_);
    std::lock_guard<std::mutex> lock(store_->mu_);
    Stmt st(store_->db_, "DELETE FROM backups WHERE id = ? AND state = 'uploading'");
    st.Text(1, BackupIdToText(id_));
    // A destructor cannot refuse; an 'uploading' row left behind is removed
    // at the next start (Open).
    (void)sqlite3_step(st.get());
  }
}

Status Upload::Append(ByteSpan data) {
  if (prepared_) return FailedPrecondition("upload already prepared");
  while (!data.empty()) {
    ByteSpan unit;
    if (pending_.empty() && data.size() >= unit_) {
      unit = data.first(unit_);
      data = data.subspan(unit_);
    } else {
      size_t take = std::min<size_t>(unit_ - pending_.size(), data.size());
      pending_.insert(pending_.end(), data.begin(), data.begin() + take);
      data = data.subspan(take);
      if (pending_.size() < unit_) break;
      unit = pending_;
    }
    if (leaves_.size() >= stripes_) return InvalidArgument("more units than the declared stripes");
    QV_RETURN_IF_ERROR(WriteUnit(unit));
    leaves_.push_back(MerkleLeafHash(unit));
    bytes_ += unit.size();
    if (!pending_.empty() && unit.data() == pending_.data()) pending_.clear();
  }
  return Status::Ok();
}

Status Upload::WriteUnit(ByteSpan unit) {
  QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "unit-write", unit.size()));
  if (!direct_) return file_->WriteAll(unit);
  // Units are multiples of 4096, so a full buffer and every flush stay aligned.
  while (!unit.empty()) {
    const size_t n = std::min(unit.size(), kDirectBuffer - direct_used_);
    std::memcpy(direct_.get() + direct_used_, unit.data(), n);
    direct_used_ += n;
    unit = unit.subspan(n);
    if (direct_used_ == kDirectBuffer) QV_RETURN_IF_ERROR(FlushDirect());
  }
  return Status::Ok();
}

Status Upload::FlushDirect() {
  if (!direct_ || direct_used_ == 0) return Status::Ok();
  Status s = file_->WriteAll(ByteSpan(direct_.get(), direct_used_));
  direct_used_ = 0;
  return s;
}

Status Upload::CheckAgainst(const SignedManifest& sm, const Share* share) const {
  const qv::Manifest& m = sm.manifest();
  if (m.backup_id != id_) return InvalidArgument("manifest is for another backup");
  if (fragment_ >= m.n() || m.unit_size != unit_ || m.stripe_count != stripes_) {
    return InvalidArgument("manifest geometry does not match the upload");
  }
  bool placed = false;
  for (const auto& p : m.placement) {
    placed = placed || (p.fragment == fragment_ && p.node_id == store_->node_id_);
  }
  if (!placed) {
    return PermissionDenied("manifest does not place fragment " + std::to_string(fragment_) +
                            " on " + store_->node_id_);
  }
  if (!pending_.empty() || leaves_.size() != stripes_) {
    return Corruption("received " + std::to_string(leaves_.size()) + " of " +
                      std::to_string(stripes_) + " units");
  }
  if (MerkleRoot(leaves_) != m.fragment_roots[fragment_]) {
    return Corruption("received fragment does not match the signed Merkle root");
  }
  if (share != nullptr) {
    if (share->x != fragment_ + 1)
      return InvalidArgument("share index does not match the fragment");
    QV_RETURN_IF_ERROR(VerifyShare(*share, m.commitments));
  }
  return Status::Ok();
}

Status Upload::Prepare(ByteSpan signed_manifest, const Share& share, int64_t deadline) {
  if (prepared_) return FailedPrecondition("upload already prepared");
  QV_ASSIGN_OR_RETURN(SignedManifest sm,
                      SignedManifest::Parse(signed_manifest, &store_->coordinator_));
  QV_RETURN_IF_ERROR(CheckAgainst(sm, &share));

  QV_RETURN_IF_ERROR(FlushDirect());
  QV_RETURN_IF_ERROR(file_->Sync());
  file_.reset();
  QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "prepare-files", leaves_.size() * 32));
  Bytes leaf_bytes;
  for (const auto& d : leaves_) AppendBytes(leaf_bytes, d);
  QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "leaves", leaf_bytes, 0600));
  SecretBytes plain = EncodeShare(share);
  QV_ASSIGN_OR_RETURN(Bytes sealed, SealShareFile(store_->master_, id_, share.x, sm.Hash(), plain));
  QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "share.sealed", sealed, 0600));
  QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "manifest", signed_manifest, 0600));
  // The deadline travels with the folder, so re-indexing keeps it.
  QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "deadline", AsBytes(std::to_string(deadline)), 0600));
  QV_RETURN_IF_ERROR(SyncDir(dir_));
  QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "prepare-rename"));
  fs::path final_dir = store_->BackupDir(id_);
  if (::rename(dir_.c_str(), final_dir.c_str()) != 0)
    return ErrnoError("publish " + final_dir.string());
  QV_RETURN_IF_ERROR(SyncDir(final_dir.parent_path()));
  prepared_ = true;
  // A crash here leaves a folder the database does not know: Open()
  // re-indexes it from its signed manifest.
  QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "prepare-row"));
  QV_RETURN_IF_ERROR(store_->SetPending(id_, deadline));
  return store_->SetState(id_, fragment_, "prepared", unit_, static_cast<int64_t>(stripes_));
}

Status NodeStore::SetPending(const BackupId& id, int64_t deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO pending VALUES (?, ?, 0)");
  st.Text(1, BackupIdToText(id));
  st.Int(2, deadline);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(db_, "recording a prepare");
  return Status::Ok();
}

Result<Digest> NodeStore::ManifestHashLocked(const BackupId& id) const {
  QV_ASSIGN_OR_RETURN(Bytes encoded, ReadFileBytes(BackupDir(id) / "manifest", kMaxManifestSize));
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
  return sm.Hash();
}

Status NodeStore::Commit(const BackupId& id, ByteSpan record_bytes, bool from_peer) {
  std::lock_guard<std::mutex> lock(mu_);
  QV_ASSIGN_OR_RETURN(StoredBackup b, Find(id));
  if (b.state == "published") return Status::Ok();
  if (b.state != "prepared") return FailedPrecondition("backup is not prepared");
  QV_ASSIGN_OR_RETURN(CommitRecord record, CommitRecord::Parse(record_bytes));
  QV_ASSIGN_OR_RETURN(Digest hash, ManifestHashLocked(id));
  QV_RETURN_IF_ERROR(record.Verify(coordinator_, id, hash));
  if (!from_peer) {
    Stmt p(db_, "SELECT promised FROM pending WHERE id = ?");
    p.Text(1, BackupIdToText(id));
    const int rc = sqlite3_step(p.get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(db_, "reading a promise");
    if (rc == SQLITE_ROW && sqlite3_column_int64(p.get(), 0) != 0) {
      return FailedPrecondition(
          "past its commit deadline this node promised to abort unless a peer holds the commit "
          "record; it will learn the outcome from its peers");
    }
  }
  // The record is the folder's own proof of commit; the row follows it.
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "commit", record_bytes.size()));
  QV_RETURN_IF_ERROR(WriteFileAtomic(BackupDir(id) / "commit", record.Encode(), 0600));
  QV_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Stmt up(db_, "UPDATE backups SET state = 'published' WHERE id = ?");
  up.Text(1, BackupIdToText(id));
  Stmt del(db_, "DELETE FROM pending WHERE id = ?");
  del.Text(1, BackupIdToText(id));
  if (sqlite3_step(up.get()) != SQLITE_DONE || sqlite3_step(del.get()) != SQLITE_DONE) {
    Status st = SqlError(db_, "commit");
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Result<NodeStore::CommitState> NodeStore::CommitStateOf(const BackupId& id, int64_t now,
                                                        int64_t skew) {
  std::lock_guard<std::mutex> lock(mu_);
  CommitState out;
  auto b = Find(id);
  if (!b.ok() || b->state == "uploading") return out;  // absent: it can never commit here
  if (b->state == "published") {
    // A repaired node's copy has no record of its own (Upload::Install);
    // an asking peer takes the record from another.
    std::error_code ec;
    if (fs::exists(BackupDir(id) / "commit", ec) || !fs::exists(BackupDir(id) / "installed", ec)) {
      QV_ASSIGN_OR_RETURN(out.record, ReadFileBytes(BackupDir(id) / "commit", 4096));
    }
    out.phase = Phase::kCommitted;
    return out;
  }
  Stmt p(db_, "SELECT deadline, promised FROM pending WHERE id = ?");
  p.Text(1, BackupIdToText(id));
  if (sqlite3_step(p.get()) != SQLITE_ROW)
    return SqlError(db_, "pending backup without a deadline");
  const int64_t deadline = sqlite3_column_int64(p.get(), 0);
  const bool promised = sqlite3_column_int64(p.get(), 1) != 0;
  if (promised) {
    out.phase = Phase::kPromised;
    return out;
  }
  // Both bounded (a plausible deadline or 0, a skew of at most an hour): no
  // overflow.
  if (now <=
      std::clamp<int64_t>(deadline, 0, kMaxPlausibleUnix) + std::clamp<int64_t>(skew, 0, 86400)) {
    out.phase = Phase::kPending;
    return out;
  }
  Stmt set(db_, "UPDATE pending SET promised = 1 WHERE id = ?");
  set.Text(1, BackupIdToText(id));
  if (sqlite3_step(set.get()) != SQLITE_DONE) return SqlError(db_, "promising abort");
  out.phase = Phase::kPromised;
  return out;
}

Result<std::vector<NodeStore::PendingBackup>> NodeStore::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT id, deadline, promised FROM pending ORDER BY id");
  std::vector<PendingBackup> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    auto id = BackupIdFromText(st.ColText(0));
    if (!id.ok()) continue;
    out.push_back({*id, sqlite3_column_int64(st.get(), 1), sqlite3_column_int64(st.get(), 2) != 0});
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "listing pending backups");
  return out;
}

Status NodeStore::Abort(const BackupId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = Find(id);
  if (!b.ok()) return Status::Ok();
  if (b->state == "published")
    return FailedPrecondition("a published backup is deleted only by retention");
  Stmt pend(db_, "DELETE FROM pending WHERE id = ?");
  pend.Text(1, BackupIdToText(id));
  if (sqlite3_step(pend.get()) != SQLITE_DONE) return SqlError(db_, "abort");
  Stmt st(db_, "DELETE FROM backups WHERE id = ? AND state = 'prepared'");
  st.Text(1, BackupIdToText(id));
  // The row goes first: a data folder is never removed while a row says it
  // is there, and a failure here is reported, not passed over.
  if (sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(db_, "abort");
  RemoveAllQuietly(BackupDir(id));
  return Status::Ok();
}

std::vector<StoredBackup> NodeStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<StoredBackup> out;
  Stmt st(db_, "SELECT id, fragment, state FROM backups WHERE state != 'uploading' ORDER BY id");
  while (st.ok() && sqlite3_step(st.get()) == SQLITE_ROW) {
    auto id = BackupIdFromText(reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0)));
    if (!id.ok()) continue;
    out.push_back({*id, static_cast<uint32_t>(sqlite3_column_int64(st.get(), 1)),
                   reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 2))});
  }
  return out;
}

namespace {

Status RequirePublished(const Result<StoredBackup>& b) {
  if (!b.ok()) return b.status();
  if (b->state != "published")
    return NotFound("backup " + BackupIdToText(b->id) + " is not published");
  return Status::Ok();
}
}  // namespace

Result<Bytes> NodeStore::ManifestSlice(const BackupId& id, uint64_t offset, size_t max,
                                       uint64_t* total) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_RETURN_IF_ERROR(RequirePublished(Find(id)));
  }
  QV_ASSIGN_OR_RETURN(auto f, File::OpenRead(BackupDir(id) / "manifest"));
  QV_ASSIGN_OR_RETURN(*total, f->Size());
  if (offset > *total) return InvalidArgument("manifest offset past its end");
  Bytes out(static_cast<size_t>(std::min<uint64_t>(max, *total - offset)));
  QV_RETURN_IF_ERROR(f->PReadExact(out, offset));
  return out;
}

Result<Bytes> NodeStore::LeavesSlice(const BackupId& id, uint64_t first, uint64_t max,
                                     uint64_t* total) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_RETURN_IF_ERROR(RequirePublished(Find(id)));
  }
  QV_ASSIGN_OR_RETURN(auto f, File::OpenRead(BackupDir(id) / "leaves"));
  QV_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size % 32 != 0) return Corruption("leaf file is not whole hashes");
  *total = size / 32;
  if (first > *total) return InvalidArgument("first leaf past the end");
  const uint64_t n = std::min(max, *total - first);
  Bytes out(static_cast<size_t>(n * 32));
  QV_RETURN_IF_ERROR(f->PReadExact(out, first * 32));
  return out;
}

Result<Bytes> NodeStore::StoredManifest(const BackupId& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_ASSIGN_OR_RETURN(StoredBackup b, Find(id));
    if (b.state == "uploading") return NotFound("backup " + BackupIdToText(id) + " is uploading");
  }
  return ReadFileBytes(BackupDir(id) / "manifest", kMaxManifestSize);
}

Result<Bytes> NodeStore::Manifest(const BackupId& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_RETURN_IF_ERROR(RequirePublished(Find(id)));
  }
  return ReadFileBytes(BackupDir(id) / "manifest", kMaxManifestSize);
}

Result<Bytes> NodeStore::Leaves(const BackupId& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_RETURN_IF_ERROR(RequirePublished(Find(id)));
  }
  return ReadFileBytes(BackupDir(id) / "leaves", 1ull << 30);
}

Result<Bytes> NodeStore::ReadUnits(const BackupId& id, uint64_t first, uint64_t count,
                                   size_t headroom, Bytes reuse) const {
  uint64_t unit = 0, stripes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = published_geometry_.find(id);
    if (it != published_geometry_.end()) {
      std::tie(unit, stripes) = it->second;
    } else {
      QV_RETURN_IF_ERROR(RequirePublished(Find(id)));
      Stmt st(db_, "SELECT unit_size, stripes FROM backups WHERE id = ?");
      st.Text(1, BackupIdToText(id));
      if (sqlite3_step(st.get()) != SQLITE_ROW) return NotFound("backup vanished");
      unit = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
      stripes = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
      if (published_geometry_.size() >= kGeometryCache) published_geometry_.clear();
      published_geometry_.emplace(id, std::make_pair(unit, stripes));
    }
  }
  if (count == 0 || first >= stripes || count > stripes - first || count * unit > kMaxFetch) {
    return InvalidArgument("unit range out of bounds");
  }
  QV_ASSIGN_OR_RETURN(auto f, File::OpenRead(BackupDir(id) / "fragment"));
  Bytes out = std::move(reuse);
  if (out.capacity() < count * unit + headroom) {
    out = Bytes();
    out.reserve(count * unit + headroom);
  }
  // Shrinking a reused buffer writes nothing; only growth is zero-filled.
  out.resize(count * unit);
  QV_RETURN_IF_ERROR(f->PReadExact(out, first * unit));
  return out;
}

// A key-check value (the master key's BLAKE2b-keyed digest of a fixed
// label, as HSMs keep a KCV beside a key) is stored at first start. A node
// whose master key file was replaced or corrupted then refuses to start,
// instead of failing at restore time after the request was spent. A data
// folder from before key-check values proves its key by opening a share.
Status NodeStore::CheckMasterKey() {
  if (master_.size() != kSecretBoxKeySize) return InvalidArgument("master key must be 32 bytes");
  const SecretBytes kcv = DeriveKey(master_, "quorumvault/v1/master-key-check", AsBytes(node_id_));
  Stmt get(db_, "SELECT value FROM meta WHERE key = 'master_key_check'");
  if (sqlite3_step(get.get()) == SQLITE_ROW) {
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(get.get(), 0));
    const int n = sqlite3_column_bytes(get.get(), 0);
    if (p == nullptr || static_cast<size_t>(n) != kcv.size() ||
        sodium_memcmp(p, kcv.data(), kcv.size()) != 0) {
      return PermissionDenied(
          "the master key does not match this node's data (its check value differs from the "
          "one stored at first start: key file replaced or corrupted); refusing to start");
    }
    return Status::Ok();
  }
  for (const auto& b : List()) {
    if (b.state != "published") continue;
    auto encoded = ReadFileBytes(BackupDir(b.id) / "manifest", kMaxManifestSize);
    if (!encoded.ok()) continue;
    if (auto share = ReadShare(b.id, Sha256Of(*encoded)); !share.ok()) {
      return PermissionDenied("the master key does not open this node's shares (backup " +
                              BackupIdToText(b.id) + "); refusing to start");
    }
    break;
  }
  Stmt put(db_, "INSERT INTO meta VALUES ('master_key_check', ?)");
  put.Blob(1, kcv.span());
  if (sqlite3_step(put.get()) != SQLITE_DONE) return SqlError(db_, "storing the key-check value");
  return Status::Ok();
}

bool NodeStore::Spent(const std::string& request_id, const BackupId& backup) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT 1 FROM used_requests WHERE id = ? AND backup = ?");
  st.Text(1, request_id);
  st.Text(2, BackupIdToText(backup));
  return sqlite3_step(st.get()) == SQLITE_ROW;
}

Result<uint32_t> NodeStore::CountRetry(const std::string& request_id, uint32_t max_retries) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_,
          "INSERT INTO request_retries VALUES (?, 1) ON CONFLICT(id) DO UPDATE SET "
          "count = count + 1 WHERE count < ? RETURNING count");
  st.Text(1, request_id);
  st.Int(2, max_retries);
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) {
    const auto n = static_cast<uint32_t>(sqlite3_column_int64(st.get(), 0));
    if (sqlite3_step(st.get()) == SQLITE_DONE) return n;
  } else if (rc == SQLITE_DONE) {
    return Status(StatusCode::kFailedPrecondition,
                  "request " + request_id.substr(0, 16) + " was already retried " +
                      std::to_string(max_retries) + " times on this node (the most allowed)");
  }
  return SqlError(db_, "recording a retry");
}

Status NodeStore::RecordDenials(const std::string& request_id,
                                const std::vector<std::string>& custodians) {
  std::lock_guard<std::mutex> lock(mu_);
  QV_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  for (const auto& c : custodians) {
    Stmt st(db_, "INSERT OR IGNORE INTO denials VALUES (?, ?)");
    st.Text(1, request_id);
    st.Text(2, c);
    if (sqlite3_step(st.get()) != SQLITE_DONE) {
      Status e = SqlError(db_, "recording a denial");
      (void)Exec("ROLLBACK");
      return e;
    }
  }
  return Exec("COMMIT");
}

Result<std::vector<std::string>> NodeStore::Denials(const std::string& request_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT custodian FROM denials WHERE request = ? ORDER BY custodian LIMIT 256");
  st.Text(1, request_id);
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(st.ColText(0));
  if (rc != SQLITE_DONE) return SqlError(db_, "reading denials");
  return out;
}

Status NodeStore::SpendRequest(const std::string& request_id, const BackupId& backup, int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "spend"));
  Stmt st(db_, "INSERT INTO used_requests VALUES (?, ?, ?)");
  st.Text(1, request_id);
  st.Text(2, BackupIdToText(backup));
  st.Int(3, now);
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_CONSTRAINT) {
    return Status(StatusCode::kAlreadyExists, "replayed: request " + request_id.substr(0, 16) +
                                                  " was already used on this node");
  }
  if (rc != SQLITE_DONE) return IoError(std::string("recording request: ") + sqlite3_errmsg(db_));
  return Status::Ok();
}

Result<SecretBytes> NodeStore::ReadShare(const BackupId& id, const Digest& manifest_hash) const {
  StoredBackup b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = Find(id);
    QV_RETURN_IF_ERROR(RequirePublished(found));
    b = *found;
  }
  QV_ASSIGN_OR_RETURN(Bytes sealed, ReadFileBytes(BackupDir(id) / "share.sealed", 4096));
  if (!IsBoundShareFile(sealed)) {
    return Corruption("the share of backup " + BackupIdToText(id) +
                      " is in the old sealing format; it is migrated when the node starts");
  }
  // The share stays sealed beside the manifest it arrived with; a repair
  // elsewhere adds revisions after it. It opens with the current manifest
  // (which must be `manifest_hash`) or an older revision this node keeps.
  QV_ASSIGN_OR_RETURN(std::vector<SignedManifest> chain, HistoryIn(BackupDir(id)));
  if (chain.empty() || chain.front().Hash() != manifest_hash) {
    return Unauthenticated("the manifest of backup " + BackupIdToText(id) + " changed");
  }
  Result<SecretBytes> opened = Unauthenticated("no manifest");
  for (const auto& sm : chain) {
    opened = OpenSecret(master_, ShareContext(id, b.fragment + 1, sm.Hash()),
                        ByteSpan(sealed).subspan(kShareMagic.size()));
    if (opened.ok()) break;
  }
  if (!opened.ok()) {
    return Unauthenticated("the share of backup " + BackupIdToText(id) +
                           " was not sealed beside this manifest (manifest replaced?) or the "
                           "master key is wrong");
  }
  return opened;
}

Status NodeStore::MigrateShare(const BackupId& id, uint32_t fragment) {
  const fs::path file = BackupDir(id) / "share.sealed";
  QV_ASSIGN_OR_RETURN(Bytes sealed, ReadFileBytes(file, 4096));
  if (IsBoundShareFile(sealed)) return Status::Ok();
  QV_ASSIGN_OR_RETURN(Bytes encoded, ReadFileBytes(BackupDir(id) / "manifest", kMaxManifestSize));
  QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(encoded, &coordinator_));
  QV_ASSIGN_OR_RETURN(SecretBytes plain,
                      OpenSecret(master_, ShareContextV1(id, fragment + 1), sealed));
  QV_ASSIGN_OR_RETURN(Bytes bound, SealShareFile(master_, id, fragment + 1, sm.Hash(), plain));
  QV_RETURN_IF_ERROR(WriteFileAtomic(file, bound, 0600));
  return SyncDir(file.parent_path());
}

}  // namespace qv
