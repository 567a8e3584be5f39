// POSIX file helpers that turn errno into Status.
//
// File owns one descriptor (closed on destruction); its methods are as
// thread-safe as the underlying calls (PRead may be used from several
// threads at once). WriteFileAtomic gives all-or-nothing replacement:
// temp file, fsync, rename, fsync of the directory.
#ifndef QV_BASE_FILE_UTIL_H_
#define QV_BASE_FILE_UTIL_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

class File {
 public:
  // Opens for reading.
  static Result<std::unique_ptr<File>> OpenRead(const std::filesystem::path& path);
  // Opens a secret (key) file for reading: without blocking (a FIFO cannot
  // hang the caller) and checked on the open descriptor (no stat-then-open
  // race): a regular file, not readable by group or others. `what` names it
  // in errors ("key file").
  static Result<std::unique_ptr<File>> OpenPrivate(const std::filesystem::path& path,
                                                   std::string_view what);
  // Creates a new file; fails with kAlreadyExists if it exists.
  static Result<std::unique_ptr<File>> CreateNew(const std::filesystem::path& path, mode_t mode);
  // The same with O_DIRECT (writes bypass the page cache; every write's
  // buffer, size and offset must be 4096-aligned). kFailedPrecondition where
  // the filesystem does not support it (tmpfs), so callers can fall back.
  static Result<std::unique_ptr<File>> CreateNewDirect(const std::filesystem::path& path,
                                                       mode_t mode);
  // A new file without a name (O_TMPFILE) in directory `dir`, for writing,
  // with O_DIRECT if `direct`. Nothing of it survives the process unless
  // Link() names it. kFailedPrecondition where the filesystem supports
  // neither O_TMPFILE nor (with `direct`) O_DIRECT, so callers can fall back.
  static Result<std::unique_ptr<File>> CreateUnnamed(const std::filesystem::path& dir, mode_t mode,
                                                     bool direct);

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Reads up to buf.size() bytes; returns the count (0 at end of file).
  Result<size_t> Read(MutableByteSpan buf);
  // Reads exactly buf.size() bytes at offset or fails (kCorruption on short file).
  Status PReadExact(MutableByteSpan buf, uint64_t offset) const;
  Status WriteAll(ByteSpan data);
  Status Truncate(uint64_t size);
  // Sets the modification time (seconds since the epoch; access time: now).
  Status SetModifiedTime(int64_t unix_seconds);
  Status Sync();
  // Gives a file from CreateUnnamed the name `path` (which must not exist).
  Status Link(const std::filesystem::path& path);
  Result<uint64_t> Size() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  File(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::filesystem::path path_;
};

Result<Bytes> ReadFileBytes(const std::filesystem::path& path, uint64_t max_size);
// The file as text, refused past `max_size` bytes.
Result<std::string> ReadFileText(const std::filesystem::path& path, uint64_t max_size);
// Writes `data` to `path` durably and atomically (replaces an existing file).
Status WriteFileAtomic(const std::filesystem::path& path, ByteSpan data, mode_t mode);
// fsync()s a directory so a rename or create inside it survives a crash.
Status SyncDir(const std::filesystem::path& dir);
// Recursively removes `path`, ignoring a missing path.
void RemoveAllQuietly(const std::filesystem::path& path);
// A short random hex tag for temporary names.
std::string RandomTag();

}  // namespace qv

#endif  // QV_BASE_FILE_UTIL_H_
