#include "erasure/reed_solomon.h"

#include <isa-l/erasure_code.h>

#include <string>

namespace qv {

Result<std::unique_ptr<ReedSolomon>> ReedSolomon::New(int k, int m) {
  if (k < 1 || m < 0 || k + m > kMaxFragments) {
    return InvalidArgument("Reed-Solomon k=" + std::to_string(k) + " m=" + std::to_string(m) +
                           ": need k >= 1, m >= 0, k + m <= " + std::to_string(kMaxFragments));
  }
  return std::unique_ptr<ReedSolomon>(new ReedSolomon(k, m));
}

ReedSolomon::ReedSolomon(int k, int m) : k_(k), m_(m) {
  const int n = k + m;
  matrix_.resize(static_cast<size_t>(n) * k);
  // Cauchy rows below an identity block: every k x k submatrix is invertible,
  // which is what makes "any k of n" hold for all k + m <= 255.
  gf_gen_cauchy1_matrix(matrix_.data(), n, k);
  encode_tbls_.resize(static_cast<size_t>(32) * k * (m > 0 ? m : 1));
  if (m > 0) ec_init_tables(k, m, matrix_.data() + static_cast<size_t>(k) * k, encode_tbls_.data());
}

void ReedSolomon::Encode(size_t len, std::span<const uint8_t* const> data,
                         std::span<uint8_t* const> parity) const {
  if (m_ == 0 || len == 0) return;
  // ISA-L's signature is not const-correct; it reads data and tables only.
  ec_encode_data(static_cast<int>(len), k_, m_, const_cast<uint8_t*>(encode_tbls_.data()),
                 const_cast<uint8_t**>(data.data()), const_cast<uint8_t**>(parity.data()));
}

Status ReedSolomon::Reconstruct(size_t len, std::span<uint8_t* const> units,
                                const std::vector<bool>& present,
                                const std::vector<bool>& rebuild) const {
  const int n = k_ + m_;
  if (static_cast<int>(units.size()) != n || static_cast<int>(present.size()) != n ||
      static_cast<int>(rebuild.size()) != n) {
    return InvalidArgument("Reconstruct needs n buffers and flags");
  }
  std::vector<int> survivors;
  for (int i = 0; i < n && static_cast<int>(survivors.size()) < k_; ++i) {
    if (present[i]) survivors.push_back(i);
  }
  if (static_cast<int>(survivors.size()) < k_) {
    return FailedPrecondition("need " + std::to_string(k_) + " fragments to rebuild, have " +
                              std::to_string(survivors.size()));
  }
  std::vector<int> targets;
  for (int i = 0; i < n; ++i) {
    if (rebuild[i]) {
      if (present[i]) return InvalidArgument("asked to rebuild a present unit");
      targets.push_back(i);
    }
  }
  if (targets.empty() || len == 0) return Status::Ok();

  // B = rows of the encode matrix for the survivors; D = B^-1 maps survivor
  // units back to data units. A wanted unit i has row (matrix_[i] * D).
  std::vector<uint8_t> b(static_cast<size_t>(k_) * k_), d(static_cast<size_t>(k_) * k_);
  for (int r = 0; r < k_; ++r) {
    for (int c = 0; c < k_; ++c) b[r * k_ + c] = matrix_[survivors[r] * k_ + c];
  }
  if (gf_invert_matrix(b.data(), d.data(), k_) != 0) {
    return Internal("Reed-Solomon decode matrix is singular");
  }
  const int rows = static_cast<int>(targets.size());
  std::vector<uint8_t> decode(static_cast<size_t>(rows) * k_);
  for (int r = 0; r < rows; ++r) {
    const int i = targets[r];
    for (int c = 0; c < k_; ++c) {
      uint8_t acc = 0;
      for (int j = 0; j < k_; ++j) acc ^= gf_mul(matrix_[i * k_ + j], d[j * k_ + c]);
      decode[r * k_ + c] = acc;
    }
  }
  std::vector<uint8_t> tbls(static_cast<size_t>(32) * k_ * rows);
  ec_init_tables(k_, rows, decode.data(), tbls.data());
  std::vector<uint8_t*> src(k_), dst(rows);
  for (int r = 0; r < k_; ++r) src[r] = units[survivors[r]];
  for (int r = 0; r < rows; ++r) dst[r] = units[targets[r]];
  ec_encode_data(static_cast<int>(len), k_, rows, tbls.data(), src.data(), dst.data());
  return Status::Ok();
}

}  // namespace qv
