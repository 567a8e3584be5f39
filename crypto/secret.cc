#include "crypto/secret.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/file_util.h"

namespace qv {

void EnsureSodium() {
  static const bool ok = [] {
    if (sodium_init() < 0) {
      std::fprintf(stderr, "fatal: libsodium failed to initialise\n");
      std::abort();
    }
    return true;
  }();
  (void)ok;
}

SecretBytes::SecretBytes(size_t n) : size_(n) {
  EnsureSodium();
  // sodium_malloc(0) is valid but we keep a non-null pointer for simplicity.
  data_ = static_cast<uint8_t*>(sodium_malloc(n == 0 ? 1 : n));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, n == 0 ? 1 : n);
}

SecretBytes SecretBytes::Random(size_t n) {
  SecretBytes s(n);
  randombytes_buf(s.data_, n);
  return s;
}

SecretBytes SecretBytes::CopyFrom(std::span<const uint8_t> data) {
  SecretBytes s(data.size());
  if (!data.empty()) std::memcpy(s.data_, data.data(), data.size());
  return s;
}

SecretBytes::~SecretBytes() { Free(); }

void SecretBytes::Free() {
  // sodium_free wipes the region before releasing it.
  if (data_ != nullptr) sodium_free(data_);
  data_ = nullptr;
  size_ = 0;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes SecretBytes::Clone() const { return CopyFrom(span()); }

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size_ != other.size_) return false;
  if (size_ == 0) return true;
  return sodium_memcmp(data_, other.data_, size_) == 0;
}

Result<SecretBytes> ReadSecretFile(const std::filesystem::path& path, size_t size) {
  QV_ASSIGN_OR_RETURN(auto f, File::OpenPrivate(path, "key file"));
  QV_ASSIGN_OR_RETURN(uint64_t n, f->Size());
  if (n != size) {
    return InvalidArgument(path.string() + ": not a " + std::to_string(size) + "-byte key");
  }
  SecretBytes s(size);
  QV_RETURN_IF_ERROR(f->PReadExact(s.mutable_span(), 0));
  return s;
}

Status RemoveSecretFile(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoError("open " + path.string());
  struct stat st {};
  Status result = Status::Ok();
  if (::fstat(fd, &st) != 0) {
    result = ErrnoError("stat " + path.string());
  } else if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
    result = InvalidArgument(path.string() + " is not a key file");
  } else {
    const Bytes zeros(static_cast<size_t>(st.st_size), 0);
    size_t done = 0;
    while (done < zeros.size() && result.ok()) {
      const ssize_t n =
          ::pwrite(fd, zeros.data() + done, zeros.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno != EINTR) result = ErrnoError("overwrite " + path.string());
      if (n > 0) done += static_cast<size_t>(n);
    }
    if (result.ok() && ::fsync(fd) != 0) result = ErrnoError("fsync " + path.string());
  }
  ::close(fd);
  QV_RETURN_IF_ERROR(result);
  if (::unlink(path.c_str()) != 0) return ErrnoError("remove " + path.string());
  return SyncDir(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

}  // namespace qv
