// Where fragments and shares go and come from: one FragmentSink / one
// FragmentSource per node. The in-process pipeline talks only to these
// interfaces; the local folder layout implements them now and the network
// transport implements them in the node issue.
#ifndef QV_COORDINATOR_FRAGMENT_STORE_H_
#define QV_COORDINATOR_FRAGMENT_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/sha256.h"
#include "crypto/vss.h"
#include "manifest/commit_record.h"
#include "manifest/manifest.h"

namespace qv {

// Receives fragment f of one backup. Calls come from one thread, in order:
// Append (once per stripe, in stripe order), then Prepare, then Publish;
// Abort at any point discards everything. Nothing is visible to readers
// before Publish.
class FragmentSink {
 public:
  virtual ~FragmentSink() = default;
  virtual const Placement& placement() const = 0;
  virtual Status Append(ByteSpan unit) = 0;
  // Makes fragment, leaf hashes, share and manifest durable, not yet visible;
  // `deadline` (unix seconds) is when a holder without a commit record
  // presumes abort (manifest/commit_record.h).
  virtual Status Prepare(const std::vector<Digest>& leaves, const Share& share,
                         const SignedManifest& manifest, int64_t deadline) = 0;
  // Makes it visible, with the coordinator's signed decision.
  virtual Status Publish(const CommitRecord& record) = 0;
  virtual void Abort() = 0;
};

// A unit as a source hands it out: `bytes` stay valid and unchanged while
// `hold` (or a copy of it) lives.
struct UnitView {
  ByteSpan bytes;
  std::shared_ptr<const void> hold;
};

// Serves fragment f of one backup. ViewUnit may be called from several
// threads at once.
class FragmentSource {
 public:
  virtual ~FragmentSource() = default;
  virtual const std::string& name() const = 0;  // the node, for reports
  virtual uint32_t fragment() const = 0;
  virtual Result<std::vector<Digest>> ReadLeaves() = 0;
  // Unit `stripe`: a view of it where the source already holds it in memory
  // (no copy), or else read into `scratch` (unit-sized), which the view then
  // names.
  virtual Result<UnitView> ViewUnit(uint64_t stripe, MutableByteSpan scratch) const = 0;
};

// A set of nodes a backup can be written to.
class BackupTarget {
 public:
  virtual ~BackupTarget() = default;
  // n sinks for backup `id`, sink f for fragment f (and share x = f + 1),
  // each to receive `stripes` units of `unit_size` bytes.
  virtual Result<std::vector<std::unique_ptr<FragmentSink>>> OpenSinks(const BackupId& id,
                                                                       uint32_t n,
                                                                       uint32_t unit_size,
                                                                       uint64_t stripes) = 0;
};

struct NamedShare {
  std::string source;  // the node it came from
  Share share;
};

}  // namespace qv

#endif  // QV_COORDINATOR_FRAGMENT_STORE_H_
