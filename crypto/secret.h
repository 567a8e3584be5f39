// SecretBytes: the one type that holds secret bytes (keys, shares, seeds).
//
// Backed by libsodium secure memory (sodium_malloc: guard pages, mlock'd,
// never swapped where the OS allows), wiped on destruction. Move-only; never
// printable (no operator<<, no conversion to string). Comparison is constant
// time. Not thread-safe for concurrent mutation; concurrent reads are fine.
#ifndef QV_CRYPTO_SECRET_H_
#define QV_CRYPTO_SECRET_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

#include "base/status.h"

namespace qv {

// Initialises libsodium once; safe to call from any thread, any number of times.
// Aborts the process if libsodium cannot initialise (no safe way to continue).
void EnsureSodium();

class SecretBytes {
 public:
  SecretBytes() = default;
  // n zero bytes in secure memory. Throws std::bad_alloc if the secure heap
  // is exhausted (like operator new).
  explicit SecretBytes(size_t n);
  static SecretBytes Random(size_t n);
  static SecretBytes CopyFrom(std::span<const uint8_t> data);

  ~SecretBytes();
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const uint8_t> span() const { return {data_, size_}; }
  std::span<uint8_t> mutable_span() { return {data_, size_}; }

  // Constant time in the contents (sizes are not secret).
  bool Equals(const SecretBytes& other) const;

 private:
  void Free();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a raw secret of exactly `size` bytes from a key file straight into
// secure memory. Refuses (kPermissionDenied) a file readable by group or
// others, and (kInvalidArgument) one of any other size.
Result<SecretBytes> ReadSecretFile(const std::filesystem::path& path, size_t size);

// Overwrites a secret file (at most 1 MiB, a regular file, not followed
// through a symlink) with zeros, syncs, removes it and syncs its folder. A
// best effort against recovery from the same disk: flash and copy-on-write
// file systems may keep the old blocks, which is why secrets on disk are
// one-time keys only.
Status RemoveSecretFile(const std::filesystem::path& path);

}  // namespace qv

#endif  // QV_CRYPTO_SECRET_H_
