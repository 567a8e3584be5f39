// The backup manifest: everything needed to check and rebuild a backup
// except the key, signed by its creator.
//
// Layout on disk/wire (all integers big-endian):
//   "QVMF" | u32 format version | u64 body length | body |
//   signer Ed25519 public key (32) | signature (64)
// The body is a Boost.Serialization text archive of Manifest. The signature
// covers "quorumvault-manifest\0" | version | body, i.e. the exact bytes
// stored, never a re-serialization. Parse() checks magic, version, length
// and signature before it deserializes anything.
//
// Stripe geometry (the invariant the pipeline relies on): stripe i holds
// exactly one AEAD chunk i; a chunk carries k * unit_size - 16 plaintext
// bytes, the last one fewer. The last stripe's ciphertext is zero-padded to
// k * unit_size. Fragment f is unit f of every stripe, in stripe order.
#ifndef QV_MANIFEST_MANIFEST_H_
#define QV_MANIFEST_MANIFEST_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/identity.h"
#include "crypto/sha256.h"
#include "crypto/vss.h"

namespace qv {

using BackupId = std::array<uint8_t, 16>;
std::string BackupIdToText(const BackupId& id);
Result<BackupId> BackupIdFromText(std::string_view text);

struct FileEntry {
  std::string path;  // relative, '/'-separated, no '.', '..' or empty parts
  uint64_t size = 0;
  Digest sha256{};
  int64_t mtime_unix = 0;  // the source file's modification time; 0: not recorded
};

struct Placement {
  uint32_t fragment = 0;  // fragment index f, also share x = f + 1
  std::string node_id;
  std::string site;
};

struct Provenance {
  std::string parent_backup;  // hex id, or empty
  std::string source_path;
  std::string creator;  // "ed25519:..." of the signer
  std::string tool_version;
};

struct Custodian {
  std::string id;
  PublicKey public_key{};
};

// Who must agree before anything of this backup is released, fixed when the
// backup is made. Separation of duties: a request's requester never counts
// toward its own quorum, and a custodian counts once however often it signs.
struct Policy {
  std::vector<Custodian> custodians;
  uint32_t quorum = 0;                  // M approvals needed
  uint32_t max_request_seconds = 0;     // longest lifetime of a request
  std::vector<std::string> quorum_ops;  // always "restore"; also export, repair, ...
  bool NeedsQuorum(std::string_view op) const;
  const Custodian* FindByKey(const PublicKey& key) const;
  // An empty policy (no custodians) marks a local, uncustodied backup.
  bool custodial() const { return !custodians.empty(); }
  Status Validate() const;
};

// Operations a policy can gate.
inline constexpr std::string_view kOpRestore = "restore";
inline constexpr std::string_view kOpRepair = "repair";
// Not a backup operation: enrolling a node key in the cluster (quorum/enrollment.h).
inline constexpr std::string_view kOpEnroll = "enroll";
inline const std::vector<std::string>& AllQuorumOps();

struct Manifest {
  // 5: labels (issue 17): 3's body, u32 revision | previous[32] (always),
  // then u32 count | tags, then u32 count (= files) | i64 mtime per file.
  // Written whenever a manifest has tags or file times; otherwise the
  // lowest format that holds it, so earlier manifests keep their bytes:
  // 4: a revision (3's body, then u32 revision | previous[32]); written
  // only for revisions after the first, so a backup's first manifest keeps
  // format 3's bytes. 3: canonical body (base/wire.h). 2 (Boost text
  // archive) is still read.
  static constexpr uint32_t kFormatVersion = 5;
  static constexpr uint32_t kRevisionFormat = 4;
  static constexpr uint32_t kFirstRevisionFormat = 3;
  // Tags: at most kMaxTags, each 1..kMaxTagBytes of [A-Za-z0-9._:@+=-].
  static constexpr size_t kMaxTags = 32;
  static constexpr size_t kMaxTagBytes = 64;

  BackupId backup_id{};
  std::string artifact_name;
  std::vector<FileEntry> files;  // in stream order
  uint64_t plaintext_size = 0;   // sum of file sizes
  CipherSuite cipher = CipherSuite::kChaCha20Poly1305;
  uint32_t chunk_size = 0;  // plaintext bytes per chunk = k * unit_size - 16
  uint32_t k = 0, m = 0, t = 0;
  uint32_t unit_size = 0;
  uint64_t stripe_count = 0;
  std::vector<Point> commitments;      // t Feldman commitments
  std::vector<Digest> fragment_roots;  // n Merkle roots over unit leaves
  std::vector<Placement> placement;
  int64_t created_unix = 0;
  Provenance provenance;
  Policy policy;
  // A repair (issue 15) changes where fragments live, nothing else: each
  // such change is a new revision signed by the coordinator that names the
  // one before by hash (SignedManifest::Hash). Revision 0 names none.
  uint32_t revision = 0;
  Digest previous{};
  std::vector<std::string> tags;  // the operator's labels (prod, step-12000), in order given

  // Whether this manifest needs format 5 (tags or file times).
  bool HasLabels() const;

  uint32_t n() const { return k + m; }
  uint64_t stripe_bytes() const { return uint64_t{k} * unit_size; }
  // Plaintext bytes carried by chunk i.
  uint64_t ChunkPlaintextSize(uint64_t i) const;

  // Checks internal consistency (geometry, counts, paths); kInvalidArgument
  // naming the first problem.
  Status Validate() const;
};

// Plaintext per chunk for a given geometry, and the stripe count it implies.
uint64_t StripeCountFor(uint64_t plaintext_size, uint32_t chunk_size);
// Rejects absolute paths, '..', '.', empty components and NUL.
Status ValidateRelativePath(std::string_view path);
// A tag as Manifest::Validate accepts it; kInvalidArgument naming why not.
Status ValidateTag(std::string_view tag);
// A backup name as `qv backup --name` takes it: 1..128 bytes of
// [A-Za-z0-9._:@+=/-] (a Hugging Face repo id is one). Names of earlier
// backups (their folders' names) are not held to it.
Status ValidateBackupName(std::string_view name);

class SignedManifest {
 public:
  // Sets provenance.creator to the signer, validates, serializes and signs.
  static Result<SignedManifest> Sign(const Manifest& manifest, const SigningKey& key);
  // If expected_signer is set, the envelope's signer must equal it.
  static Result<SignedManifest> Parse(ByteSpan encoded, const PublicKey* expected_signer);

  const Manifest& manifest() const { return manifest_; }
  const Bytes& encoded() const { return encoded_; }
  const PublicKey& signer() const { return signer_; }
  // SHA-256 of the encoded bytes: what requests and logs refer to.
  Digest Hash() const { return Sha256Of(encoded_); }

 private:
  Manifest manifest_;
  Bytes encoded_;
  PublicKey signer_{};
};

// Whether `next` may replace `current` for a backup: the next revision,
// naming `current` by hash, signed by the same key, and the same in every
// field but placement, which must place each fragment once. `moved`, if
// given, receives the fragments whose node changed. kPermissionDenied
// naming the first difference.
Status CheckSuccessor(const SignedManifest& current, const SignedManifest& next,
                      std::vector<uint32_t>* moved = nullptr);

// A manifest of a million files with long paths fits; it travels in pages
// (node/messages.h), never as one message.
inline constexpr uint64_t kMaxManifestSize = 256ull << 20;
// The largest stripe unit: one unit must fit a node's answer (24 MiB) with
// room to spare, or a backup could be stored and never fetched.
inline constexpr uint32_t kMaxUnitSize = 16u << 20;

inline const std::vector<std::string>& AllQuorumOps() {
  static const std::vector<std::string> ops = {"restore", "export", "repair", "refresh", "delete"};
  return ops;
}

}  // namespace qv

#endif  // QV_MANIFEST_MANIFEST_H_
