// The coordinator's commit decision for a backup: two-phase commit (Gray,
// "Notes on Data Base Operating Systems", 1978) with the decision itself a
// signed record the nodes share, presumed abort after a deadline, and
// cooperative termination (a prepared node asks its peers for the record).
//
// Every node first prepares (fragment, share and manifest durable, not
// visible). Only then does the coordinator sign this record, before the
// deadline it gave the nodes at prepare, and send it to every node. A node
// that holds a valid record has committed, and hands it to any peer that
// asks. A node still prepared after the deadline (plus clock skew) promises
// never to take the record from the coordinator, asks its peers, and
// aborts only when every peer has promised too or no longer has the backup
// (then no node can ever hold a record). A node that learns of a record
// from a peer commits. So once every node is back, a backup is committed
// everywhere or gone everywhere.
//
// Encoding (base/wire.h, canonical): "QVCM" | u32 version | backup id |
// manifest hash | i64 deadline | i64 signed | Ed25519 signature over
// kCommitContext | body. A value type; thread-compatible.
#ifndef QV_MANIFEST_COMMIT_RECORD_H_
#define QV_MANIFEST_COMMIT_RECORD_H_

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/sha256.h"
#include "manifest/manifest.h"

namespace qv {

inline constexpr std::string_view kCommitContext = "quorumvault/commit/v1";

struct CommitRecord {
  static constexpr uint32_t kVersion = 1;
  BackupId backup_id{};
  Digest manifest_hash{};
  int64_t deadline = 0;     // the prepare deadline the nodes were given
  int64_t signed_unix = 0;  // when the coordinator decided; never after deadline
  Signature signature{};

  Bytes Body() const;
  Bytes Encode() const;
  static Result<CommitRecord> Parse(ByteSpan encoded);
  static CommitRecord Sign(const SigningKey& coordinator, const BackupId& id,
                           const Digest& manifest_hash, int64_t deadline, int64_t now);
  // Signed by `coordinator`, for this backup and manifest, decided in time.
  Status Verify(const PublicKey& coordinator, const BackupId& id,
                const Digest& manifest_hash) const;
};

}  // namespace qv

#endif  // QV_MANIFEST_COMMIT_RECORD_H_
