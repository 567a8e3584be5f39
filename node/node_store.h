// A node's storage: fragment files on disk, metadata in SQLite (WAL), shares
// sealed at rest under the node's master key.
//
//   DATA/meta.db                      backups(id, fragment, state, ...)
//   DATA/staging/ID/                  an upload in progress
//   DATA/backups/ID/{fragment,leaves,share.sealed,manifest}
//
// An upload is staged, then Prepare() checks it against the signed manifest
// (signer, placement, Merkle root of the units that actually arrived, share
// against the Feldman commitments), makes it durable (fsync, rename, then
// the SQLite row) and Publish() makes it visible. Only published backups are
// served. Open() removes what an interrupted upload left behind, so a
// partial fragment is never served after a crash.
//
// Thread-safe: SQLite access is serialized by a mutex; reads of published
// fragments use pread on files opened per call.
#ifndef QV_NODE_NODE_STORE_H_
#define QV_NODE_NODE_STORE_H_

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/file_util.h"
#include "base/storage_faults.h"
#include "crypto/secret.h"
#include "crypto/sha256.h"
#include "crypto/vss.h"
#include "manifest/manifest.h"
#include "node/pending.h"
#include "node/scrub_wire.h"

struct sqlite3;

namespace qv {

class NodeStore;

// One fragment being received. Not thread-safe; owned by one session; must
// not outlive the NodeStore that began it. Destroyed before Prepare, it
// discards what it received.
class Upload {
 public:
  ~Upload();
  Status Append(ByteSpan units);
  // Verifies and makes durable; the backup is then prepared, not yet served,
  // until a commit record arrives (manifest/commit_record.h). `deadline`
  // (unix seconds) is when, without one, the node presumes abort.
  Status Prepare(ByteSpan signed_manifest, const Share& share, int64_t deadline);
  // Repair (issue 15): the rebuilt fragment, checked as Prepare checks it
  // against `signed_manifest` (which places it on this node), installed
  // published at once. Where the node already holds the backup, the
  // fragment (and, if given, the share) replaces its own, leaves first, each
  // by an atomic rename; a newer manifest revision then follows
  // (NodeStore::InstallRevision). Elsewhere `share` is required and the
  // backup arrives as a new folder (marked installed: no commit record).
  Status Install(ByteSpan signed_manifest, const Share* share);
  const BackupId& id() const { return id_; }
  uint64_t bytes() const { return bytes_; }

 private:
  friend class NodeStore;
  Upload(NodeStore* store, BackupId id, uint32_t fragment, uint32_t unit, uint64_t stripes,
         std::filesystem::path dir, std::unique_ptr<File> file)
      : store_(store),
        id_(id),
        fragment_(fragment),
        unit_(unit),
        stripes_(stripes),
        dir_(std::move(dir)),
        file_(std::move(file)) {}
  NodeStore* store_;
  BackupId id_;
  uint32_t fragment_, unit_;
  uint64_t stripes_;
  std::filesystem::path dir_;
  std::unique_ptr<File> file_;
  Status WriteUnit(ByteSpan unit);
  // What Prepare and Install check before anything is made durable: the
  // manifest's backup, geometry and placement, every unit received, the
  // units' Merkle root, and (if given) the share against the commitments.
  Status CheckAgainst(const SignedManifest& sm, const Share* share) const;
  Status FlushDirect();
  std::vector<Digest> leaves_;
  Bytes pending_;  // a unit split across Append calls
  // With O_DIRECT, units gather in this 4096-aligned buffer before writing.
  std::unique_ptr<uint8_t, void (*)(void*)> direct_{nullptr, &std::free};
  size_t direct_used_ = 0;
  uint64_t bytes_ = 0;
  uint64_t reserved_ = 0;  // disk space counted for this upload in NodeStore::reserved_
  bool prepared_ = false;
};

struct StoreUsage {
  uint64_t stored_bytes = 0;  // files of the backups held (fragments, leaves, manifests)
  uint64_t free_bytes = 0;    // free on the data folder's file system (for this user)
};

struct StoredBackup {
  BackupId id{};
  uint32_t fragment = 0;
  std::string state;  // "prepared" or "published"
};

// Free space every upload leaves on the node's disk: 1% of the file
// system, and at least this much.
inline constexpr uint64_t kMinFreeReserve = 64ull << 20;

// What a store runs on (not owned; must outlive it): its clock, and the
// fault hooks the simulator injects storage faults through.
struct NodeStoreEnv {
  const Clock* clock = SystemClock::Default();
  StorageFaults* faults = nullptr;
};

class NodeStore {
 public:
  // `node_id` must match the manifest placement; `coordinator` signs manifests.
  // What the node's audit log remembers, for rebuilding a lost metadata
  // database: backups it saw published (folders from before their marker)
  // and requests it released (so they stay spent).
  struct RecoveryHints {
    std::set<BackupId> published;
    std::vector<std::pair<std::string, BackupId>> spent;  // request id (hex), backup
  };
  static Result<std::unique_ptr<NodeStore>> Open(const std::filesystem::path& data_dir,
                                                 SecretBytes master_key, std::string node_id,
                                                 PublicKey coordinator,
                                                 const RecoveryHints* hints = nullptr,
                                                 NodeStoreEnv env = {});
  ~NodeStore();

  // With `repair`, a backup already published here with this fragment may
  // be uploaded again (its rebuilt fragment, for Upload::Install).
  Result<std::unique_ptr<Upload>> Begin(const BackupId& id, uint32_t fragment, uint32_t unit_size,
                                        uint64_t stripes, bool repair = false);
  // Commits a prepared backup with the coordinator's signed record: stored
  // in the backup's folder, the backup is then published. Idempotent. After
  // the node promised to abort, only a record relayed by a peer (which
  // proves some node committed first) is taken, never the coordinator's.
  Status Commit(const BackupId& id, ByteSpan record, bool from_peer);
  // Removes a prepared (never a published) backup.
  Status Abort(const BackupId& id);

  // Where a backup stands in two-phase commit, as a peer asking is told.
  enum class Phase : uint8_t { kAbsent = 0, kPending = 1, kPromised = 2, kCommitted = 3 };
  struct CommitState {
    Phase phase = Phase::kAbsent;
    Bytes record;  // when committed
  };
  // At `now`, past the backup's deadline plus `skew`, a pending backup is
  // first durably promised to abort, and reported so.
  Result<CommitState> CommitStateOf(const BackupId& id, int64_t now, int64_t skew);
  struct PendingBackup {
    BackupId id{};
    int64_t deadline = 0;
    bool promised = false;
  };
  // Prepared backups, awaiting their commit record.
  Result<std::vector<PendingBackup>> Pending() const;

  std::vector<StoredBackup> List() const;
  Result<Bytes> Manifest(const BackupId& id) const;
  // Up to `max` bytes of a published backup's signed manifest from `offset`,
  // and its whole size in *total.
  Result<Bytes> ManifestSlice(const BackupId& id, uint64_t offset, size_t max,
                              uint64_t* total) const;
  // The signed manifest of a backup in any state past upload (a prepared
  // one included: termination needs its placement).
  Result<Bytes> StoredManifest(const BackupId& id) const;
  Result<Bytes> Leaves(const BackupId& id) const;
  // At most `max` leaf hashes from leaf `first` on, and the count in *total.
  Result<Bytes> LeavesSlice(const BackupId& id, uint64_t first, uint64_t max,
                            uint64_t* total) const;
  // `headroom` is spare capacity left after the units, so a caller can append
  // (a message header) without reallocating. `reuse` is a buffer from an
  // earlier read: read into it, the units overwrite it instead of a fresh
  // buffer being zero-filled first.
  Result<Bytes> ReadUnits(const BackupId& id, uint64_t first, uint64_t count, size_t headroom = 0,
                          Bytes reuse = {}) const;
  // The share, be32(x) || y, unsealed with the master key. It opens only
  // with the hash of the signed manifest it was stored with.
  Result<SecretBytes> ReadShare(const BackupId& id, const Digest& manifest_hash) const;
  // Repair: `next` replaces the backup's manifest if it is the next
  // revision (CheckSuccessor) and still places this node's fragment here;
  // the one it replaces is kept in the folder's history/. Idempotent.
  Status InstallRevision(const BackupId& id, ByteSpan next);
  // Decommission: this node's copy of a published backup (fragment,
  // leaves, sealed share, manifests) removed for good. The folder is first
  // renamed out of backups/ (so a crash never brings it back), then its row
  // goes, then the share file is overwritten and everything deleted; Open()
  // finishes a wipe a crash cut short.
  Status Wipe(const BackupId& id);
  // Every manifest revision this node keeps of a backup, newest first, each
  // older one checked against the hash its successor names.
  Result<std::vector<SignedManifest>> ManifestHistory(const BackupId& id) const;
  // Scrub coverage of a backup (zeros before its first scrub).
  Result<ScrubCoverage> Coverage(const BackupId& id) const;
  // Units of `id` checked against its data just now (`stripes` in all):
  // the cursor moves over those that continue from it, and a pass that
  // reaches the end closes the cycle at `now`.
  Status Cover(const BackupId& id, std::vector<uint64_t> checked, uint64_t stripes, int64_t now);
  // Records a request id as spent, durably, before anything is released for
  // it. kAlreadyExists when it was spent before (a replay).
  Status SpendRequest(const std::string& request_id, const BackupId& backup, int64_t now);
  // Custodians who denied a request, as this node saw it (in a certificate
  // or posted), kept for good: a denial is a veto however it is left out.
  Status RecordDenials(const std::string& request_id, const std::vector<std::string>& custodians);
  Result<std::vector<std::string>> Denials(const std::string& request_id) const;
  // Whether `request_id` was spent here (for `backup`).
  bool Spent(const std::string& request_id, const BackupId& backup) const;
  // Counts one more presentation of a spent request, durably; returns the
  // count, or kFailedPrecondition once `max_retries` were counted.
  Result<uint32_t> CountRetry(const std::string& request_id, uint32_t max_retries);
  // Disk use now (a walk of backups/; statvfs of the data folder).
  StoreUsage Usage() const;
  // Restore requests submitted through the cluster (node/pending.h), kept
  // until `expires`. Taking one already kept changes nothing;
  // kFailedPrecondition when kMaxPendingRequests unexpired ones are kept.
  Status AddPending(const std::string& id, const BackupId& backup, ByteSpan request, int64_t now,
                    int64_t expires);
  // A custodian's vote (an encoded approval or denial) on a kept request;
  // a later vote replaces the custodian's earlier one. kNotFound when the
  // request is not kept.
  Status AddPendingVote(const std::string& id, const std::string& custodian, ByteSpan approval);
  // Unexpired kept requests (expiry after `now`), oldest first, at most
  // kMaxPendingList and about kMaxPendingListBytes; with `id`, only that one.
  Result<std::vector<PendingEntry>> PendingRequests(int64_t now, const std::string& id = "") const;
  // Cluster membership (quorum/enrollment.h): the digest of the first
  // membership this node started in, and the enrollment certificates it
  // accepted since, in order. Files under DATA/membership/, each written
  // atomically and durably, so they outlive a lost meta.db.
  Result<std::optional<Digest>> FirstMembership() const;
  Status SetFirstMembership(const Digest& digest);
  Result<std::vector<Bytes>> Enrollments() const;
  Status AddEnrollment(ByteSpan certificate);
  // How many leftovers Open() removed (interrupted uploads, unknown folders).
  int cleaned_on_open() const { return cleaned_; }
  // What Open() re-indexed or quarantined, one line each.
  const std::vector<std::string>& recovery() const { return recovery_; }

 private:
  friend class Upload;
  NodeStore() = default;
  Status Exec(const std::string& sql) const;
  Status CheckMasterKey();
  Status MigrateShare(const BackupId& id, uint32_t fragment);
  Status Reindex(const BackupId& id, const std::filesystem::path& dir, const RecoveryHints* hints);
  Result<Digest> ManifestHashLocked(const BackupId& id) const;
  Status SetPending(const BackupId& id, int64_t deadline);
  Result<StoredBackup> Find(const BackupId& id) const;
  Status SetState(const BackupId& id, uint32_t fragment, const std::string& state, int64_t unit,
                  int64_t stripes);
  std::filesystem::path BackupDir(const BackupId& id) const;
  Result<std::vector<SignedManifest>> HistoryIn(const std::filesystem::path& dir) const;
  Status InstallRevisionLocked(const BackupId& id, ByteSpan next);  // repair_mu_ held
  Status FinishWipes();

  std::filesystem::path dir_;
  SecretBytes master_;
  std::string node_id_;
  PublicKey coordinator_{};
  NodeStoreEnv env_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mu_;
  std::mutex repair_mu_;  // one repair step (install, revision) at a time
  // Unit size and stripe count of published backups already read, so a fetch
  // does not query the database. Published backups never change; whatever
  // deletes one must erase it here too.
  mutable std::map<BackupId, std::pair<uint64_t, uint64_t>> published_geometry_;  // guarded by mu_
  uint64_t reserved_ = 0;  // bytes uploads in progress declared; guarded by mu_
  int cleaned_ = 0;
  std::vector<std::string> recovery_;
};

}  // namespace qv

#endif  // QV_NODE_NODE_STORE_H_
