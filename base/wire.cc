#include "base/wire.h"

#include <algorithm>

namespace qv {

WireWriter& WireWriter::U8(uint8_t v) {
  out_.push_back(v);
  return *this;
}

WireWriter& WireWriter::U32(uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(v >> s));
  return *this;
}

WireWriter& WireWriter::U64(uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(v >> s));
  return *this;
}

WireWriter& WireWriter::Str(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  out_.insert(out_.end(), s.begin(), s.end());
  return *this;
}

WireWriter& WireWriter::Blob(ByteSpan b) {
  U32(static_cast<uint32_t>(b.size()));
  return Raw(b);
}

WireWriter& WireWriter::Raw(ByteSpan b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}

Result<ByteSpan> WireReader::Raw(size_t n) {
  if (n > remaining()) {
    return InvalidArgument("truncated: needs " + std::to_string(n) + " bytes at offset " +
                           std::to_string(pos_) + ", " + std::to_string(remaining()) + " left");
  }
  ByteSpan s = in_.subspan(pos_, n);
  pos_ += n;
  return s;
}

Result<uint8_t> WireReader::U8() {
  QV_ASSIGN_OR_RETURN(ByteSpan s, Raw(1));
  return s[0];
}

Result<uint32_t> WireReader::U32() {
  QV_ASSIGN_OR_RETURN(ByteSpan s, Raw(4));
  uint32_t v = 0;
  for (uint8_t b : s) v = v << 8 | b;
  return v;
}

Result<uint64_t> WireReader::U64() {
  QV_ASSIGN_OR_RETURN(ByteSpan s, Raw(8));
  uint64_t v = 0;
  for (uint8_t b : s) v = v << 8 | b;
  return v;
}

Result<int64_t> WireReader::I64() {
  QV_ASSIGN_OR_RETURN(uint64_t v, U64());
  return static_cast<int64_t>(v);
}

Result<std::string> WireReader::Str(size_t max_len) {
  QV_ASSIGN_OR_RETURN(uint32_t n, U32());
  if (n > max_len) {
    return InvalidArgument("string of " + std::to_string(n) + " bytes exceeds the limit of " +
                           std::to_string(max_len));
  }
  QV_ASSIGN_OR_RETURN(ByteSpan s, Raw(n));
  return std::string(s.begin(), s.end());
}

Result<Bytes> WireReader::Blob(size_t max_len) {
  QV_ASSIGN_OR_RETURN(uint32_t n, U32());
  if (n > max_len) {
    return InvalidArgument("field of " + std::to_string(n) + " bytes exceeds the limit of " +
                           std::to_string(max_len));
  }
  QV_ASSIGN_OR_RETURN(ByteSpan s, Raw(n));
  return Bytes(s.begin(), s.end());
}

Status WireReader::ExpectMagic(std::string_view magic, std::string_view what) {
  auto got = Raw(magic.size());
  if (!got.ok() || !std::equal(got->begin(), got->end(), magic.begin())) {
    return InvalidArgument("not a quorumvault " + std::string(what) + " (bad magic)");
  }
  return Status::Ok();
}

Status WireReader::ExpectEnd() const {
  if (remaining() != 0) {
    return InvalidArgument(std::to_string(remaining()) + " trailing bytes after the record");
  }
  return Status::Ok();
}

}  // namespace qv
