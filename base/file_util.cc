#include "base/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

namespace qv {

namespace fs = std::filesystem;

Result<std::unique_ptr<File>> File::OpenRead(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path.string() + ": no such file");
    return ErrnoError(path.string());
  }
  return std::unique_ptr<File>(new File(fd, path));
}

Result<std::unique_ptr<File>> File::OpenPrivate(const fs::path& path, std::string_view what) {
  const std::string name = std::string(what) + " " + path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return ErrnoError(name);
  std::unique_ptr<File> f(new File(fd, path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError(name);
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)                          ? "a directory"
                       : S_ISFIFO(st.st_mode)                       ? "a FIFO"
                       : S_ISSOCK(st.st_mode)                       ? "a socket"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                    : "not a regular file";
    return InvalidArgument(name + " is " + kind + ", not a key file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied(name + " has mode " + mode +
                            "; secret keys must not be readable by group or others (chmod 600)");
  }
  // Reads block normally from here on (a regular file never would anyway).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return f;
}

Result<std::unique_ptr<File>> File::CreateNew(const fs::path& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExists(path.string() + ": already exists");
    return ErrnoError(path.string());
  }
  return std::unique_ptr<File>(new File(fd, path));
}

Result<std::unique_ptr<File>> File::CreateNewDirect(const fs::path& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, mode);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExists(path.string() + ": already exists");
    if (errno == EINVAL) return FailedPrecondition(path.string() + ": O_DIRECT not supported");
    return ErrnoError(path.string());
  }
  return std::unique_ptr<File>(new File(fd, path));
}

Result<std::unique_ptr<File>> File::CreateUnnamed(const fs::path& dir, mode_t mode, bool direct) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC | (direct ? O_DIRECT : 0), mode);
  if (fd < 0) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
      return FailedPrecondition(dir.string() + ": unnamed (O_TMPFILE" +
                                std::string(direct ? ", O_DIRECT" : "") + ") files not supported");
    }
    return ErrnoError(dir.string());
  }
  return std::unique_ptr<File>(new File(fd, dir / "(unnamed)"));
}

Status File::Link(const fs::path& path) {
  // linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link
  // of the descriptor does not.
  const std::string self = "/proc/self/fd/" + std::to_string(fd_);
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return ErrnoError("link " + path.string());
  }
  path_ = path;
  return Status::Ok();
}

File::~File() { ::close(fd_); }

Result<size_t> File::Read(MutableByteSpan buf) {
  while (true) {
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoError("read " + path_.string());
  }
}

Status File::PReadExact(MutableByteSpan buf, uint64_t offset) const {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n =
        ::pread(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + path_.string());
    }
    if (n == 0) {
      return Corruption(path_.string() + ": file ends at " + std::to_string(offset + done) +
                        ", expected " + std::to_string(offset + buf.size()) + " bytes");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::WriteAll(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + path_.string());
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status File::SetModifiedTime(int64_t unix_seconds) {
  const timespec times[2] = {{0, UTIME_NOW}, {static_cast<time_t>(unix_seconds), 0}};
  if (::futimens(fd_, times) != 0) return ErrnoError("set the time of " + path_.string());
  return Status::Ok();
}

Status File::Truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return ErrnoError("truncate " + path_.string());
  return Status::Ok();
}

Status File::Sync() {
  if (::fdatasync(fd_) != 0) return ErrnoError("fsync " + path_.string());
  return Status::Ok();
}

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoError("stat " + path_.string());
  return static_cast<uint64_t>(st.st_size);
}

Result<Bytes> ReadFileBytes(const fs::path& path, uint64_t max_size) {
  QV_ASSIGN_OR_RETURN(auto file, File::OpenRead(path));
  QV_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > max_size) {
    return InvalidArgument(path.string() + ": " + std::to_string(size) +
                           " bytes is larger than the limit of " + std::to_string(max_size));
  }
  Bytes out(size);
  QV_RETURN_IF_ERROR(file->PReadExact(out, 0));
  return out;
}

Status SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory " + dir.string());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync directory " + dir.string());
  return Status::Ok();
}

std::string RandomTag() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) | rd();
  uint8_t b[8];
  PutU64BE(b, v);
  return HexEncode(ByteSpan(b, 6));
}

Status WriteFileAtomic(const fs::path& path, ByteSpan data, mode_t mode) {
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::path tmp = dir / ("." + path.filename().string() + ".tmp-" + RandomTag());
  {
    QV_ASSIGN_OR_RETURN(auto f, File::CreateNew(tmp, mode));
    Status s = f->WriteAll(data);
    if (s.ok()) s = f->Sync();
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = ErrnoError("rename to " + path.string());
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir);
}

void RemoveAllQuietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

Result<std::string> ReadFileText(const std::filesystem::path& path, uint64_t max_size) {
  QV_ASSIGN_OR_RETURN(Bytes b, ReadFileBytes(path, max_size));
  return std::string(b.begin(), b.end());
}

}  // namespace qv
