// NodeStore's part of repair (issue 15): manifest revisions with their
// history, and rebuilt fragments installed beside (or instead of) a
// node's own. Every step is an atomic rename of a synced file, ordered so
// that a crash anywhere leaves the node serving its old data or its new
// data, never a mix it cannot check: leaves before the fragment (both are
// determined by the signed root, so old leaves never misdescribe a rebuilt
// fragment), data before the manifest revision that names it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "node/node_store.h"
#include "node/share_seal.h"
#include "node/sqlite_stmt.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

// Revisions kept per backup; each one is a repair a quorum approved.
constexpr uint32_t kMaxRevisions = 4096;

fs::path HistoryFile(const fs::path& dir, uint32_t revision) {
  return dir / "history" / ("r" + std::to_string(revision));
}

}  // namespace

Result<std::vector<SignedManifest>> NodeStore::HistoryIn(const fs::path& dir) const {
  std::vector<SignedManifest> chain;
  QV_ASSIGN_OR_RETURN(Bytes encoded, ReadFileBytes(dir / "manifest", kMaxManifestSize));
  QV_ASSIGN_OR_RETURN(SignedManifest current, SignedManifest::Parse(encoded, &coordinator_));
  chain.push_back(std::move(current));
  std::error_code ec;
  while (chain.back().manifest().revision > 0 && chain.size() <= kMaxRevisions) {
    const qv::Manifest& newer = chain.back().manifest();
    const fs::path file = HistoryFile(dir, newer.revision - 1);
    if (!fs::exists(file, ec)) break;  // installed by a repair: its history starts here
    QV_ASSIGN_OR_RETURN(Bytes old, ReadFileBytes(file, kMaxManifestSize));
    QV_ASSIGN_OR_RETURN(SignedManifest sm, SignedManifest::Parse(old, &coordinator_));
    if (sm.Hash() != newer.previous || sm.manifest().revision + 1 != newer.revision) {
      return Corruption(file.string() + " is not the revision its successor names");
    }
    chain.push_back(std::move(sm));
  }
  return chain;
}

Result<std::vector<SignedManifest>> NodeStore::ManifestHistory(const BackupId& id) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_ASSIGN_OR_RETURN(StoredBackup b, Find(id));
    if (b.state != "published")
      return NotFound("backup " + BackupIdToText(id) + " is not published");
  }
  return HistoryIn(BackupDir(id));
}

Status NodeStore::InstallRevision(const BackupId& id, ByteSpan next) {
  std::lock_guard<std::mutex> repair(repair_mu_);
  return InstallRevisionLocked(id, next);
}

Status NodeStore::InstallRevisionLocked(const BackupId& id, ByteSpan next) {
  StoredBackup b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_ASSIGN_OR_RETURN(b, Find(id));
  }
  if (b.state != "published") return FailedPrecondition("backup is not published here");
  const fs::path dir = BackupDir(id);
  QV_ASSIGN_OR_RETURN(SignedManifest incoming, SignedManifest::Parse(next, &coordinator_));
  QV_ASSIGN_OR_RETURN(std::vector<SignedManifest> chain, HistoryIn(dir));
  for (const auto& held : chain) {
    if (held.Hash() == incoming.Hash()) return Status::Ok();  // already installed
  }
  const SignedManifest& current = chain.front();
  if (current.manifest().revision >= kMaxRevisions) {
    return FailedPrecondition("backup has " + std::to_string(kMaxRevisions) + " revisions");
  }
  QV_RETURN_IF_ERROR(CheckSuccessor(current, incoming));
  bool mine = false;
  for (const auto& p : incoming.manifest().placement) {
    mine = mine || (p.fragment == b.fragment && p.node_id == node_id_);
  }
  if (!mine) {
    return PermissionDenied("revision " + std::to_string(incoming.manifest().revision) +
                            " moves fragment " + std::to_string(b.fragment) + " off " + node_id_ +
                            "; a node is decommissioned, not overwritten");
  }
  std::error_code ec;
  fs::create_directories(dir / "history", ec);
  if (ec) return IoError("create " + (dir / "history").string() + ": " + ec.message());
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "revision-history"));
  QV_RETURN_IF_ERROR(
      WriteFileAtomic(HistoryFile(dir, current.manifest().revision), current.encoded(), 0600));
  QV_RETURN_IF_ERROR(SyncDir(dir / "history"));
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "revision-manifest"));
  QV_RETURN_IF_ERROR(WriteFileAtomic(dir / "manifest", next, 0600));
  return SyncDir(dir);
}

Status Upload::Install(ByteSpan signed_manifest, const Share* share) {
  if (prepared_) return FailedPrecondition("upload already installed");
  QV_ASSIGN_OR_RETURN(SignedManifest sm,
                      SignedManifest::Parse(signed_manifest, &store_->coordinator_));
  const qv::Manifest& m = sm.manifest();
  QV_RETURN_IF_ERROR(CheckAgainst(sm, share));
  QV_RETURN_IF_ERROR(FlushDirect());
  QV_RETURN_IF_ERROR(file_->Sync());
  file_.reset();
  Bytes leaf_bytes;
  for (const auto& d : leaves_) AppendBytes(leaf_bytes, d);
  const fs::path final_dir = store_->BackupDir(id_);
  std::lock_guard<std::mutex> repair(store_->repair_mu_);
  Result<StoredBackup> held = FailedPrecondition("");
  {
    std::lock_guard<std::mutex> lock(store_->mu_);
    held = store_->Find(id_);
  }
  if (held.ok() && held->state == "published") {
    // In place: this node's own fragment (and share) rebuilt.
    if (held->fragment != fragment_) return FailedPrecondition("node holds another fragment");
    QV_ASSIGN_OR_RETURN(std::vector<SignedManifest> chain, store_->HistoryIn(final_dir));
    const SignedManifest& current = chain.front();
    if (current.Hash() != sm.Hash()) QV_RETURN_IF_ERROR(CheckSuccessor(current, sm));
    QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "install-leaves", leaf_bytes.size()));
    QV_RETURN_IF_ERROR(WriteFileAtomic(final_dir / "leaves", leaf_bytes, 0600));
    if (share != nullptr) {
      // Sealed beside the manifest in force now, so it opens whether or not
      // the revision below is installed before a crash.
      QV_ASSIGN_OR_RETURN(Bytes sealed, SealShareFile(store_->master_, id_, share->x,
                                                      current.Hash(), EncodeShare(*share)));
      QV_RETURN_IF_ERROR(WriteFileAtomic(final_dir / "share.sealed", sealed, 0600));
    }
    QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "install-fragment"));
    if (::rename((dir_ / "fragment").c_str(), (final_dir / "fragment").c_str()) != 0) {
      return ErrnoError("install " + (final_dir / "fragment").string());
    }
    QV_RETURN_IF_ERROR(SyncDir(final_dir));
    prepared_ = true;
    RemoveAllQuietly(dir_);
    if (current.Hash() == sm.Hash()) return Status::Ok();
    return store_->InstallRevisionLocked(id_, signed_manifest);
  } else {
    // A node new to the backup: the whole folder, published at once.
    if (share == nullptr) return InvalidArgument("a node new to a backup needs its share");
    if (m.revision == 0) return InvalidArgument("a new holder needs a manifest revision");
    QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "install-files", leaf_bytes.size()));
    QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "leaves", leaf_bytes, 0600));
    QV_ASSIGN_OR_RETURN(Bytes sealed, SealShareFile(store_->master_, id_, share->x, sm.Hash(),
                                                    EncodeShare(*share)));
    QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "share.sealed", sealed, 0600));
    QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "manifest", signed_manifest, 0600));
    QV_RETURN_IF_ERROR(WriteFileAtomic(dir_ / "installed", AsBytes("repair"), 0600));
    QV_RETURN_IF_ERROR(SyncDir(dir_));
    QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "install-rename"));
    if (::rename(dir_.c_str(), final_dir.c_str()) != 0) {
      return ErrnoError("install " + final_dir.string());
    }
    QV_RETURN_IF_ERROR(SyncDir(final_dir.parent_path()));
    prepared_ = true;
    // A crash here leaves a folder the database does not know: Open()
    // re-indexes it (published: it is marked installed).
    QV_RETURN_IF_ERROR(FaultAt(store_->env_.faults, "install-row"));
    return store_->SetState(id_, fragment_, "published", unit_, static_cast<int64_t>(stripes_));
  }
}

Result<ScrubCoverage> NodeStore::Coverage(const BackupId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT cursor, cycle, started, last_complete FROM scrub_coverage WHERE id = ?");
  st.Text(1, BackupIdToText(id));
  ScrubCoverage c;
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_ROW) {
    c.cursor = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
    c.cycle = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
    c.cycle_started = sqlite3_column_int64(st.get(), 2);
    c.last_complete = sqlite3_column_int64(st.get(), 3);
  } else if (rc != SQLITE_DONE) {
    return IoError(std::string("metadata database: scrub coverage: ") + sqlite3_errmsg(db_));
  }
  return c;
}

Status NodeStore::Cover(const BackupId& id, std::vector<uint64_t> checked, uint64_t stripes,
                        int64_t now) {
  if (stripes == 0) return Status::Ok();
  QV_ASSIGN_OR_RETURN(ScrubCoverage c, Coverage(id));
  if (c.cursor >= stripes) c.cursor = 0;
  if (c.cycle_started == 0) c.cycle_started = now;
  std::sort(checked.begin(), checked.end());
  // The run of checked units from the cursor on, wrapping at the end (a
  // pass that reaches the end completes the cycle).
  for (uint64_t steps = 0; steps < stripes; ++steps) {
    if (!std::binary_search(checked.begin(), checked.end(), c.cursor)) break;
    if (++c.cursor == stripes) {
      c.cursor = 0;
      ++c.cycle;
      c.last_complete = now;
      c.cycle_started = now;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO scrub_coverage VALUES (?, ?, ?, ?, ?)");
  st.Text(1, BackupIdToText(id));
  st.Int(2, static_cast<int64_t>(c.cursor));
  st.Int(3, static_cast<int64_t>(c.cycle));
  st.Int(4, c.cycle_started);
  st.Int(5, c.last_complete);
  if (sqlite3_step(st.get()) != SQLITE_DONE) {
    return IoError(std::string("metadata database: scrub coverage: ") + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Status NodeStore::Wipe(const BackupId& id) {
  std::lock_guard<std::mutex> repair(repair_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    QV_ASSIGN_OR_RETURN(StoredBackup b, Find(id));
    if (b.state != "published") return FailedPrecondition("backup is not published here");
  }
  std::error_code ec;
  fs::create_directories(dir_ / "wiping", ec);
  if (ec) return IoError("create " + (dir_ / "wiping").string() + ": " + ec.message());
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "wipe-rename"));
  const fs::path to = dir_ / "wiping" / BackupIdToText(id);
  if (::rename(BackupDir(id).c_str(), to.c_str()) != 0) return ErrnoError("wipe " + to.string());
  QV_RETURN_IF_ERROR(SyncDir(dir_ / "backups"));
  QV_RETURN_IF_ERROR(SyncDir(dir_ / "wiping"));
  QV_RETURN_IF_ERROR(FaultAt(env_.faults, "wipe-row"));
  return FinishWipes();
}

Status NodeStore::FinishWipes() {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir_ / "wiping", ec)) {
    auto id = BackupIdFromText(e.path().filename().string());
    if (id.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const char* sql :
           {"DELETE FROM backups WHERE id = ?", "DELETE FROM pending WHERE id = ?",
            "DELETE FROM scrub_coverage WHERE id = ?"}) {
        Stmt st(db_, sql);
        st.Text(1, BackupIdToText(*id));
        if (sqlite3_step(st.get()) != SQLITE_DONE) {
          return IoError(std::string("metadata database: wipe: ") + sqlite3_errmsg(db_));
        }
      }
      published_geometry_.erase(*id);
    }
    // The sealed share overwritten in place before it is unlinked. (It is
    // sealed under the master key anyway; on copy-on-write file systems
    // and flash the old blocks may survive, which the master key covers.)
    const fs::path share = e.path() / "share.sealed";
    if (const int fd = ::open(share.c_str(), O_WRONLY | O_CLOEXEC); fd >= 0) {
      const Bytes zeros(4096, 0);
      (void)!::pwrite(fd, zeros.data(), zeros.size(), 0);
      (void)::fdatasync(fd);
      ::close(fd);
    }
    RemoveAllQuietly(e.path());
  }
  return Status::Ok();
}

}  // namespace qv
