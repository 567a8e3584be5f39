// Byte buffers, views and hex text. Not for secrets: see crypto/secret.h.
#ifndef QV_BASE_BYTES_H_
#define QV_BASE_BYTES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace qv {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string HexEncode(ByteSpan data);
// Accepts upper or lower case; rejects odd length and non-hex characters.
Result<Bytes> HexDecode(std::string_view hex);

// Decodes exactly N bytes of hex, naming `what` in the error.
template <size_t N>
Result<std::array<uint8_t, N>> HexDecodeFixed(std::string_view hex, std::string_view what) {
  auto b = HexDecode(hex);
  if (!b.ok() || b->size() != N) {
    return InvalidArgument(std::string(what) + ": expected " + std::to_string(2 * N) +
                           " hex characters");
  }
  std::array<uint8_t, N> out;
  std::copy(b->begin(), b->end(), out.begin());
  return out;
}

inline void PutU64BE(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

inline uint64_t GetU64BE(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

inline void AppendU64BE(Bytes& out, uint64_t v) {
  uint8_t b[8];
  PutU64BE(b, v);
  out.insert(out.end(), b, b + 8);
}

inline void AppendBytes(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

// Human units: "1.50 GiB".
std::string FormatBytes(uint64_t n);

}  // namespace qv

#endif  // QV_BASE_BYTES_H_
