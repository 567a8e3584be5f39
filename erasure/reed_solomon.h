// Reed-Solomon erasure coding over GF(2^8) with ISA-L (Cauchy matrix).
//
// Systematic: fragments 0..k-1 are the data units unchanged, k..k+m-1 are
// parity. Any k of the n = k + m units rebuild the others. Immutable after
// New(); Encode and Reconstruct are const and thread-safe (decode tables are
// built per call on the caller's stack/heap).
#ifndef QV_ERASURE_REED_SOLOMON_H_
#define QV_ERASURE_REED_SOLOMON_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"

namespace qv {

inline constexpr int kMaxFragments = 255;

class ReedSolomon {
 public:
  // 1 <= k, 0 <= m, k + m <= 255.
  static Result<std::unique_ptr<ReedSolomon>> New(int k, int m);

  int k() const { return k_; }
  int m() const { return m_; }
  int n() const { return k_ + m_; }

  // Computes the m parity units of `len` bytes from the k data units.
  void Encode(size_t len, std::span<const uint8_t* const> data,
              std::span<uint8_t* const> parity) const;

  // units: n buffers of `len` bytes; present[i] says unit i holds good data.
  // Rebuilds every unit i with rebuild[i] set (it must not be present) from
  // the first k present units, which are only read. kFailedPrecondition if
  // fewer than k present.
  Status Reconstruct(size_t len, std::span<uint8_t* const> units, const std::vector<bool>& present,
                     const std::vector<bool>& rebuild) const;

 private:
  ReedSolomon(int k, int m);
  const int k_;
  const int m_;
  std::vector<uint8_t> matrix_;       // n x k encode matrix
  std::vector<uint8_t> encode_tbls_;  // ISA-L tables for the parity rows
};

}  // namespace qv

#endif  // QV_ERASURE_REED_SOLOMON_H_
