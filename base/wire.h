// Canonical binary encoding for signed and hashed records (requests,
// approvals, audit entries): big-endian integers, u32-length-prefixed
// strings and byte strings, fixed arrays raw. One value has exactly one
// encoding, so signatures and hashes are over bytes both sides rebuild.
//
// WireWriter appends to a buffer it owns. WireReader reads from a span it
// does not own (the span must outlive it); every read is bounds-checked and
// a length above the caller's limit fails before anything is allocated.
// Neither is thread-safe.
#ifndef QV_BASE_WIRE_H_
#define QV_BASE_WIRE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

class WireWriter {
 public:
  WireWriter& U8(uint8_t v);
  WireWriter& U32(uint32_t v);
  WireWriter& U64(uint64_t v);
  WireWriter& I64(int64_t v) { return U64(static_cast<uint64_t>(v)); }
  WireWriter& Str(std::string_view s);
  WireWriter& Blob(ByteSpan b);  // length-prefixed
  WireWriter& Raw(ByteSpan b);   // no length: fixed-size fields
  template <size_t N>
  WireWriter& Fixed(const std::array<uint8_t, N>& a) {
    return Raw(ByteSpan(a.data(), N));
  }
  const Bytes& bytes() const { return out_; }
  Bytes Take() { return std::move(out_); }

 private:
  Bytes out_;
};

class WireReader {
 public:
  explicit WireReader(ByteSpan in) : in_(in) {}
  Result<uint8_t> U8();
  Result<uint32_t> U32();
  Result<uint64_t> U64();
  Result<int64_t> I64();
  Result<std::string> Str(size_t max_len);
  Result<Bytes> Blob(size_t max_len);
  Result<ByteSpan> Raw(size_t n);
  template <size_t N>
  Result<std::array<uint8_t, N>> Fixed() {
    QV_ASSIGN_OR_RETURN(ByteSpan s, Raw(N));
    std::array<uint8_t, N> a;
    std::copy(s.begin(), s.end(), a.begin());
    return a;
  }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  // Fails unless every byte was consumed (no trailing data).
  Status ExpectEnd() const;
  // Reads a record's magic; "not a quorumvault WHAT (bad magic)" otherwise.
  Status ExpectMagic(std::string_view magic, std::string_view what);

 private:
  ByteSpan in_;
  size_t pos_ = 0;
};

}  // namespace qv

#endif  // QV_BASE_WIRE_H_
