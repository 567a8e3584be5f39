// Fragment sinks and sources held in memory: for tests (which corrupt or drop
// fragments at will) and for `qv bench` (which measures the pipeline without
// the disk). MemoryNodes owns the data; sinks and sources borrow it and must
// not outlive it. Not thread-safe while a backup writes; ReadUnit is safe to
// call concurrently once the backup is published.
#ifndef QV_COORDINATOR_MEMORY_STORE_H_
#define QV_COORDINATOR_MEMORY_STORE_H_

#include <memory>
#include <optional>
#include <vector>

#include "coordinator/fragment_store.h"

namespace qv {

class MemoryNodes : public BackupTarget {
 public:
  struct Node {
    Placement placement;
    Bytes staging;  // what a running backup has appended so far
    Bytes fragment;
    std::vector<Digest> leaves;
    std::optional<Share> share;
    bool published = false;
  };

  explicit MemoryNodes(uint32_t n);
  // Allocates and touches `fragment_bytes` per node now, so a timed backup
  // does not pay the kernel's first-touch page faults (benchmarks).
  void Reserve(uint64_t fragment_bytes);
  // A deep copy (shares included), so tests can damage one copy per case.
  std::unique_ptr<MemoryNodes> Clone() const;

  // n must equal the node count; the id is not needed in memory.
  Result<std::vector<std::unique_ptr<FragmentSink>>> OpenSinks(const BackupId& id, uint32_t n,
                                                               uint32_t unit_size,
                                                               uint64_t stripes) override;
  // Sources for every published node that still has its fragment.
  std::vector<std::unique_ptr<FragmentSource>> Sources(uint64_t unit_size);
  std::vector<NamedShare> Shares() const;

  Node& node(uint32_t f) { return nodes_[f]; }
  uint32_t size() const { return static_cast<uint32_t>(nodes_.size()); }

 private:
  std::vector<Node> nodes_;
};

}  // namespace qv

#endif  // QV_COORDINATOR_MEMORY_STORE_H_
