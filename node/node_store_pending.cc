// NodeStore: disk use, and restore requests kept for the ceremony through the cluster
// (node_store.h, node/pending.h). Rows in meta.db's ceremony and
// ceremony_votes tables; expired ones are deleted as new ones arrive, so
// the tables stay within kMaxPendingRequests requests and kMaxApprovals
// votes each.
#include <sys/statvfs.h>

#include "node/node_store.h"
#include "node/sqlite_stmt.h"
#include "quorum/request.h"

namespace qv {

namespace fs = std::filesystem;

StoreUsage NodeStore::Usage() const {
  StoreUsage u;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_ / "backups", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) u.stored_bytes += it->file_size(ec);
  }
  struct statvfs v {};
  if (::statvfs(dir_.c_str(), &v) == 0) u.free_bytes = uint64_t{v.f_bavail} * v.f_frsize;
  return u;
}

Status NodeStore::AddPending(const std::string& id, const BackupId& backup, ByteSpan request,
                             int64_t now, int64_t expires) {
  std::lock_guard<std::mutex> lock(mu_);
  QV_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status st) {
    (void)Exec("ROLLBACK");
    return st;
  };
  {
    Stmt gone(db_,
              "DELETE FROM ceremony_votes WHERE request IN (SELECT id FROM ceremony WHERE "
              "expires < ?)");
    gone.Int(1, now);
    if (sqlite3_step(gone.get()) != SQLITE_DONE) return fail(SqlError(db_, "expiring votes"));
    Stmt old(db_, "DELETE FROM ceremony WHERE expires < ?");
    old.Int(1, now);
    if (sqlite3_step(old.get()) != SQLITE_DONE) return fail(SqlError(db_, "expiring requests"));
  }
  Stmt count(db_, "SELECT COUNT(*) FROM ceremony");
  if (sqlite3_step(count.get()) != SQLITE_ROW) return fail(SqlError(db_, "counting requests"));
  const int64_t kept = sqlite3_column_int64(count.get(), 0);
  Stmt have(db_, "SELECT 1 FROM ceremony WHERE id = ?");
  have.Text(1, id);
  const bool known = sqlite3_step(have.get()) == SQLITE_ROW;
  if (!known && kept >= static_cast<int64_t>(kMaxPendingRequests)) {
    return fail(FailedPrecondition("this node keeps " + std::to_string(kMaxPendingRequests) +
                                   " pending requests already; try when some expire"));
  }
  Stmt put(db_, "INSERT OR IGNORE INTO ceremony VALUES (?, ?, ?, ?, ?)");
  put.Text(1, id);
  put.Text(2, BackupIdToText(backup));
  put.Blob(3, request);
  put.Int(4, now);
  put.Int(5, expires);
  if (sqlite3_step(put.get()) != SQLITE_DONE) return fail(SqlError(db_, "keeping a request"));
  return Exec("COMMIT");
}

Status NodeStore::AddPendingVote(const std::string& id, const std::string& custodian,
                                 ByteSpan approval) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt have(db_, "SELECT 1 FROM ceremony WHERE id = ?");
  have.Text(1, id);
  if (sqlite3_step(have.get()) != SQLITE_ROW) {
    return NotFound("request " + id.substr(0, 16) + " is not pending here");
  }
  Stmt votes(db_, "SELECT COUNT(*) FROM ceremony_votes WHERE request = ? AND custodian != ?");
  votes.Text(1, id);
  votes.Text(2, custodian);
  if (sqlite3_step(votes.get()) != SQLITE_ROW) return SqlError(db_, "counting votes");
  if (sqlite3_column_int64(votes.get(), 0) >= static_cast<int64_t>(kMaxApprovals)) {
    return FailedPrecondition("request " + id.substr(0, 16) + " has 64 votes already");
  }
  Stmt put(db_, "INSERT OR REPLACE INTO ceremony_votes VALUES (?, ?, ?)");
  put.Text(1, id);
  put.Text(2, custodian);
  put.Blob(3, approval);
  if (sqlite3_step(put.get()) != SQLITE_DONE) return SqlError(db_, "keeping a vote");
  return Status::Ok();
}

Result<std::vector<PendingEntry>> NodeStore::PendingRequests(int64_t now,
                                                             const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, id.empty() ? "SELECT id, request, received FROM ceremony WHERE expires >= ? "
                            "ORDER BY received, id LIMIT 256"
                          : "SELECT id, request, received FROM ceremony WHERE expires >= ? "
                            "AND id = ?");
  st.Int(1, now);
  if (!id.empty()) st.Text(2, id);
  std::vector<PendingEntry> out;
  size_t bytes = 0;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW && bytes < kMaxPendingListBytes) {
    PendingEntry e;
    const std::string rid = st.ColText(0);
    e.request = st.ColBlob(1);
    e.received = sqlite3_column_int64(st.get(), 2);
    Stmt v(db_,
           "SELECT approval FROM ceremony_votes WHERE request = ? ORDER BY custodian LIMIT 64");
    v.Text(1, rid);
    int vr;
    while ((vr = sqlite3_step(v.get())) == SQLITE_ROW) e.approvals.push_back(v.ColBlob(0));
    if (vr != SQLITE_DONE) return SqlError(db_, "reading votes");
    bytes += e.request.size();
    for (const auto& a : e.approvals) bytes += a.size();
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqlError(db_, "reading pending requests");
  return out;
}

}  // namespace qv
