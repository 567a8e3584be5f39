// CorruptByte: damages a stored file in place, for tests of integrity checks.
// Every bit of the byte is inverted, so the file always changes (writing a
// fixed byte leaves it unchanged when that byte was already there).
#ifndef QV_BASE_CORRUPT_H_
#define QV_BASE_CORRUPT_H_

#include <cstdint>
#include <filesystem>
#include <fstream>

namespace qv {

// True when the byte at `offset` existed and was inverted.
inline bool CorruptByte(const std::filesystem::path& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  char c = 0;
  if (!f.seekg(static_cast<std::streamoff>(offset)) || !f.get(c)) return false;
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(~c));
  return static_cast<bool>(f.flush());
}

}  // namespace qv

#endif  // QV_BASE_CORRUPT_H_
