// The streaming backup and restore pipelines.
//
// Backup: artifact -> per-stripe AEAD chunk -> Reed-Solomon k+m -> n sinks,
// plus a fresh verifiable sharing of the data key (t of n) whose commitments
// go into the signed manifest. Stripe i carries exactly AEAD chunk i, so
// stripes are independent and run on all cores; a reader thread streams and
// hashes the files while workers encrypt, encode and hash units, and the
// calling thread hands units to the sinks in order. Memory is bounded by the
// pool of in-flight stripes (about 2 * workers + 2), never by artifact size.
// The data key and secret exist only inside RunBackup, in secure memory.
//
// Restore: any t good shares and any k good fragments. Every share is
// checked against the commitments, every fragment's leaf list against its
// signed Merkle root, every unit against its leaf and every chunk by its
// AEAD tag; bad ones are named in the report and routed around. Files go to
// an ArtifactWriter that publishes only after every file digest matches.
#ifndef QV_COORDINATOR_PIPELINE_H_
#define QV_COORDINATOR_PIPELINE_H_

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "coordinator/artifact.h"
#include "coordinator/fragment_store.h"
#include "crypto/identity.h"
#include "manifest/manifest.h"

namespace qv {

using ProgressFn = std::function<void(uint64_t done_bytes, uint64_t total_bytes)>;

inline constexpr uint32_t kDefaultUnitSize = 256 * 1024;

struct BackupOptions {
  uint32_t k = 4, m = 2, t = 3;
  CipherSuite cipher = CipherSuite::kChaCha20Poly1305;
  uint32_t max_unit_size = kDefaultUnitSize;  // multiple of 64
  int workers = 0;                            // 0: one per hardware thread
  std::string parent_backup;
  std::string tool_version = "qv 0.1.0";
  // The backup's name (default: the artifact's) and tags (manifest.h).
  std::string name;
  std::vector<std::string> tags;
  Policy policy;  // who must agree to release it; empty for local, uncustodied backups
  // How long nodes hold a prepared backup without the commit record before
  // they presume abort (manifest/commit_record.h); preparing must finish
  // within it.
  int64_t commit_window_seconds = 600;
  ProgressFn progress;
  // The manifest's creation time and the commit deadline come from it
  // (not owned; a fake one in tests and sim/).
  const Clock* clock = SystemClock::Default();
};

struct BackupOutcome {
  SignedManifest manifest;
  uint64_t plaintext_bytes = 0;
  uint64_t stored_bytes = 0;  // all fragments together
  double seconds = 0;
  std::vector<std::string> problems;  // nodes that will take the commit from their peers
};

// The unit size for a plaintext of `size` bytes: small artifacts get small
// units (one stripe), large ones max_unit_size.
uint32_t ChooseUnitSize(uint64_t plaintext_size, uint32_t k, uint32_t max_unit_size);

// The AEAD key for a backup, derived from the shared secret (the value the
// Shamir shares interpolate to) and bound to the backup id and cipher suite.
SecretBytes DataKey(const SecretBytes& secret, const BackupId& id, CipherSuite cipher);

// Opens k + m sinks on `target`; sink f receives fragment f and share
// x = f + 1. On any failure every sink is aborted and nothing is published.
Result<BackupOutcome> RunBackup(const Artifact& artifact, BackupTarget& target,
                                const SigningKey& signer, const BackupOptions& options);

struct RestoreOptions {
  int workers = 0;
  ProgressFn progress;
  // Fragments in the order to read them (e.g. fastest node first); any not
  // listed follow in index order. Empty: data fragments first, which needs
  // no decoding.
  std::vector<uint32_t> fragment_order;
};

struct RestoreReport {
  std::vector<std::string> problems;  // every bad or missing fragment and share, named
  std::vector<uint32_t> fragments_used;
  bool reconstructed = false;  // parity was needed
  uint64_t plaintext_bytes = 0;
  double seconds = 0;
};

// On failure the writer is aborted and the status names what was missing
// or bad; `problems` (if given) still receives what was found.
Result<RestoreReport> RunRestore(const SignedManifest& manifest,
                                 std::vector<std::unique_ptr<FragmentSource>> sources,
                                 std::vector<NamedShare> shares, ArtifactWriter& writer,
                                 const RestoreOptions& options);

}  // namespace qv

#endif  // QV_COORDINATOR_PIPELINE_H_
