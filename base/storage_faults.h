// The storage seam's fault hooks: named points in a node's storage steps
// where the simulator (sim/) or a test makes the disk fail as a real one
// does (ENOSPC, EIO) or the process stop dead (a crash between two steps).
// Production passes none. Implementations must be thread-safe.
#ifndef QV_BASE_STORAGE_FAULTS_H_
#define QV_BASE_STORAGE_FAULTS_H_

#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace qv {

class StorageFaults {
 public:
  virtual ~StorageFaults() = default;
  // Called before the step `point` (e.g. "unit-write", "prepare-row"),
  // which writes about `bytes`. OK lets the step run; an error is what
  // the step fails with.
  virtual Status Before(std::string_view point, uint64_t bytes) = 0;
};

// The hook if there is one, else OK.
inline Status FaultAt(StorageFaults* faults, std::string_view point, uint64_t bytes = 0) {
  return faults == nullptr ? Status::Ok() : faults->Before(point, bytes);
}

}  // namespace qv

#endif  // QV_BASE_STORAGE_FAULTS_H_
