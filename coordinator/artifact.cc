#include "coordinator/artifact.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/clock.h"
#include "base/file_util.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

class FileByteReader : public ByteReader {
 public:
  explicit FileByteReader(std::unique_ptr<File> f) : f_(std::move(f)) {}
  Result<size_t> Read(MutableByteSpan buf) override { return f_->Read(buf); }

 private:
  std::unique_ptr<File> f_;
};

class SpanReader : public ByteReader {
 public:
  explicit SpanReader(ByteSpan data) : data_(data) {}
  Result<size_t> Read(MutableByteSpan buf) override {
    size_t n = std::min(buf.size(), data_.size() - pos_);
    if (n > 0) std::memcpy(buf.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

SourceFile DiskFile(std::string rel, const fs::path& p, uint64_t size) {
  struct stat st {};
  const int64_t mtime = ::stat(p.c_str(), &st) == 0 ? int64_t{st.st_mtim.tv_sec} : 0;
  return SourceFile{std::move(rel), size,
                    [p]() -> Result<std::unique_ptr<ByteReader>> {
                      QV_ASSIGN_OR_RETURN(auto f, File::OpenRead(p));
                      return std::unique_ptr<ByteReader>(new FileByteReader(std::move(f)));
                    },
                    mtime};
}

Status AddRegular(const fs::path& p, std::string rel, std::vector<SourceFile>& out) {
  std::error_code ec;
  auto st = fs::status(p, ec);  // follows symlinks
  if (ec) return IoError(p.string() + ": " + ec.message());
  if (!fs::is_regular_file(st)) {
    return InvalidArgument(p.string() + ": not a regular file (special files are not backed up)");
  }
  uint64_t size = fs::file_size(p, ec);
  if (ec) return IoError(p.string() + ": " + ec.message());
  out.push_back(DiskFile(std::move(rel), p, size));
  return Status::Ok();
}

Status AddFolder(const fs::path& root, const std::string& prefix, std::vector<SourceFile>& out) {
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return IoError(root.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return IoError(root.string() + ": " + ec.message());
    const fs::path& p = it->path();
    // Lexical, not fs::relative: that resolves symlinks and would name a
    // linked shard by its target (e.g. a Hugging Face blob hash).
    std::string rel = prefix + p.lexically_relative(root).generic_string();
    auto sst = it->symlink_status(ec);
    if (ec) return IoError(p.string() + ": " + ec.message());
    if (fs::is_directory(sst)) continue;
    if (fs::is_symlink(sst) && fs::is_directory(fs::status(p, ec))) {
      return InvalidArgument(p.string() + ": symlinked directories are not supported");
    }
    if (fs::is_symlink(sst) && !fs::exists(p, ec)) {
      return InvalidArgument(p.string() + ": dangling symlink");
    }
    QV_RETURN_IF_ERROR(ValidateRelativePath(rel));
    QV_RETURN_IF_ERROR(AddRegular(p, rel, out));
  }
  return Status::Ok();
}

}  // namespace

uint64_t Artifact::TotalSize() const {
  uint64_t t = 0;
  for (const auto& f : files) t += f.size;
  return t;
}

Result<Artifact> ScanPaths(const std::vector<fs::path>& paths) {
  if (paths.empty()) return InvalidArgument("no input paths");
  Artifact a;
  std::map<std::string, fs::path> names;
  for (const auto& raw : paths) {
    std::error_code ec;
    fs::path p = fs::absolute(raw, ec).lexically_normal();
    if (ec || !fs::exists(p, ec)) return NotFound(raw.string() + ": no such file or directory");
    std::string base = p.filename().string();
    if (base.empty()) base = p.parent_path().filename().string();
    if (base.empty()) return InvalidArgument(raw.string() + ": cannot back up the root folder");
    if (!names.emplace(base, p).second) {
      return InvalidArgument(raw.string() + ": two inputs share the name '" + base + "'");
    }
    const bool many = paths.size() > 1;
    if (fs::is_directory(p, ec)) {
      QV_RETURN_IF_ERROR(AddFolder(p, many ? base + "/" : "", a.files));
    } else {
      QV_RETURN_IF_ERROR(AddRegular(p, base, a.files));
    }
  }
  std::sort(a.files.begin(), a.files.end(),
            [](const SourceFile& x, const SourceFile& y) { return x.path < y.path; });
  fs::path first = fs::absolute(paths[0]).lexically_normal();
  a.name = paths.size() == 1 ? (first.filename().empty() ? first.parent_path().filename().string()
                                                         : first.filename().string())
                             : first.parent_path().filename().string();
  std::error_code ec;
  if (paths.size() == 1 && fs::is_directory(first, ec)) {
    if (std::string model = ModelNameOf(first); !model.empty()) a.name = model;
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i) a.source_path += " ";
    a.source_path += fs::absolute(paths[i]).lexically_normal().string();
  }
  return a;
}

std::string ModelNameOf(const fs::path& folder) {
  const fs::path dir = fs::absolute(folder).lexically_normal();
  // .../models--ORG--NAME/snapshots/REV: the cache's own spelling of the
  // repo id, "--" for "/".
  const fs::path repo = dir.parent_path().parent_path().filename();
  if (dir.parent_path().filename() == "snapshots" && repo.string().rfind("models--", 0) == 0) {
    std::string id = repo.string().substr(8);
    for (size_t at = id.find("--"); at != std::string::npos; at = id.find("--", at + 1)) {
      id.replace(at, 2, "/");
    }
    if (ValidateBackupName(id).ok()) return id;
  }
  // config.json, read as far as 1 MiB; a local path there names nothing.
  std::error_code ec;
  const fs::path config = dir / "config.json";
  if (!fs::is_regular_file(config, ec) || fs::file_size(config, ec) > (1 << 20) || ec) return "";
  std::ifstream in(config);
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("_name_or_path") || !j["_name_or_path"].is_string()) return "";
  const std::string name = j["_name_or_path"].get<std::string>();
  if (name.empty() || name.front() == '/' || name.front() == '.' ||
      name.find('~') != std::string::npos || std::count(name.begin(), name.end(), '/') > 1 ||
      !ValidateBackupName(name).ok()) {
    return "";
  }
  return name;
}

Artifact MemoryArtifact(std::string name, std::vector<std::pair<std::string, ByteSpan>> files) {
  Artifact a;
  a.name = std::move(name);
  a.source_path = "(memory)";
  for (auto& [path, data] : files) {
    ByteSpan d = data;
    a.files.push_back(SourceFile{path, d.size(), [d]() -> Result<std::unique_ptr<ByteReader>> {
                                   return std::unique_ptr<ByteReader>(new SpanReader(d));
                                 }});
  }
  std::sort(a.files.begin(), a.files.end(),
            [](const SourceFile& x, const SourceFile& y) { return x.path < y.path; });
  return a;
}

namespace {

// One write at a time on a thread of its own. O_DIRECT writes block for the
// device; handing each full buffer over lets the disk's time overlap the
// restore's hashing and copying instead of stalling the ordered stage.
class BackgroundWrites {
 public:
  ~BackgroundWrites() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // `data` must stay valid and `file` open until Wait() returns. Waits for
  // the previous write; its error (or an earlier one) is returned instead.
  Status Submit(File* file, ByteSpan data) {
    QV_RETURN_IF_ERROR(Wait());
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    file_ = file;
    data_ = data;
    busy_ = true;
    cv_.notify_all();
    return Status::Ok();
  }
  // Until no write is pending; the first error since the last Wait().
  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
    Status s = std::move(error_);
    error_ = Status::Ok();
    return s;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || busy_; });
      if (stop_) return;
      lock.unlock();
      Status s = file_->WriteAll(data_);
      lock.lock();
      if (!s.ok() && error_.ok()) error_ = std::move(s);
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  File* file_ = nullptr;
  ByteSpan data_;
  bool busy_ = false, stop_ = false;
  Status error_ = Status::Ok();
};

// Restored weights are written once and rarely read back at once, so where
// the filesystem allows, files bypass the page cache (O_DIRECT through two
// aligned buffers, one filling while the other is written; the last block
// is padded and the file truncated to size).
//
// Plaintext never has a name before the whole artifact is verified: each
// file is an unnamed O_TMPFILE inode in the destination's filesystem, kept
// open until Commit() links them all into the staging folder and renames
// it into place. A process killed at any point leaves no plaintext, only
// an empty staging folder, which the next writer for that destination
// removes. Where O_TMPFILE is unsupported, or more files are pending than
// descriptors allow, files are written named inside the staging folder;
// it is locked (flock) while in use, so the next run can tell a stale one
// (its holder gone) from a live one and removes it, with a note.
class FolderWriter : public ArtifactWriter {
 public:
  static constexpr size_t kAlign = 4096;
  static constexpr size_t kBuffer = 4u << 20;

  FolderWriter(fs::path dest, fs::path staging, int lock_fd, size_t max_unnamed)
      : dest_(std::move(dest)),
        staging_(std::move(staging)),
        lock_fd_(lock_fd),
        max_unnamed_(max_unnamed) {}
  ~FolderWriter() override {
    // No write is pending here: Abort waits for it, and a commit follows
    // EndFile, which does.
    if (!committed_) Abort();
    for (auto& b : bufs_) {
      if (b) sodium_memzero(b.get(), kBuffer);  // they held restored plaintext
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Status BeginFile(const FileEntry& entry) override {
    QV_RETURN_IF_ERROR(ValidateRelativePath(entry.path));
    mtime_ = entry.mtime_unix;
    fs::path p = staging_ / fs::path(entry.path);
    // Nested folders get the top folder's mode (0700): restored weights are
    // nobody else's until the operator says so.
    fs::path dir = staging_;
    for (const auto& part : fs::path(entry.path).parent_path()) {
      dir /= part;
      if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return ErrnoError("mkdir " + dir.string());
    }
    path_ = p;
    unnamed_ = false;
    Result<std::unique_ptr<File>> direct = FailedPrecondition("named");
    if (unnamed_ok_ && pending_.size() < max_unnamed_) {
      direct = File::CreateUnnamed(p.parent_path(), 0600, /*direct=*/true);
      if (!direct.ok() && direct.status().code() == StatusCode::kFailedPrecondition) {
        auto buffered = File::CreateUnnamed(p.parent_path(), 0600, /*direct=*/false);
        if (buffered.ok()) {
          direct_ = false;
          unnamed_ = true;
          file_ = std::move(buffered).value();
          size_ = 0;
          used_ = 0;
          return Status::Ok();
        }
        if (buffered.status().code() != StatusCode::kFailedPrecondition) return buffered.status();
        unnamed_ok_ = false;  // this filesystem has no O_TMPFILE
      }
      unnamed_ = direct.ok();
    }
    if (!unnamed_) direct = File::CreateNewDirect(p, 0600);
    if (direct.ok()) {
      for (auto& b : bufs_) {
        if (!b) b.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, kBuffer)));
      }
      direct_ = bufs_[0] != nullptr && bufs_[1] != nullptr;
      file_ = std::move(direct).value();
    } else if (direct.status().code() == StatusCode::kFailedPrecondition) {
      direct_ = false;
      QV_ASSIGN_OR_RETURN(file_, File::CreateNew(p, 0600));
    } else {
      return direct.status();
    }
    size_ = 0;
    used_ = 0;
    return Status::Ok();
  }
  Status Write(ByteSpan data) override {
    size_ += data.size();
    if (!direct_) return file_->WriteAll(data);
    while (!data.empty()) {
      const size_t n = std::min(data.size(), kBuffer - used_);
      std::memcpy(bufs_[cur_].get() + used_, data.data(), n);
      used_ += n;
      data = data.subspan(n);
      if (used_ == kBuffer) {
        QV_RETURN_IF_ERROR(writes_.Submit(file_.get(), ByteSpan(bufs_[cur_].get(), used_)));
        cur_ ^= 1;
        used_ = 0;
      }
    }
    return Status::Ok();
  }
  Status EndFile() override {
    Status s = writes_.Wait();
    if (s.ok() && direct_ && used_ > 0) {
      const size_t padded = (used_ + kAlign - 1) / kAlign * kAlign;
      std::memset(bufs_[cur_].get() + used_, 0, padded - used_);
      s = file_->WriteAll(ByteSpan(bufs_[cur_].get(), padded));
      if (s.ok()) s = file_->Truncate(size_);
    }
    used_ = 0;
    // The source's modification time, as the signed manifest recorded it
    // (an implausible one is left as the restore's time).
    if (s.ok() && PlausibleUnix(mtime_)) s = file_->SetModifiedTime(mtime_);
    // No fsync per file: one syncfs() at Commit makes every file durable
    // (120,000 small files took a minute of fsyncs).
    if (s.ok() && unnamed_) {
      pending_.emplace_back(std::move(file_), path_);  // named at Commit
    }
    file_.reset();
    return s;
  }
  Status Commit() override {
    // Every file is verified: make all their data durable at once, then
    // name the unnamed ones.
    if (::syncfs(lock_fd_) != 0) return ErrnoError("syncfs " + staging_.string());
    for (auto& [file, path] : pending_) QV_RETURN_IF_ERROR(file->Link(path));
    pending_.clear();
    // Directories first hold their entries durably, then the rename publishes.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(staging_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory()) QV_RETURN_IF_ERROR(SyncDir(it->path()));
    }
    QV_RETURN_IF_ERROR(SyncDir(staging_));
    // RENAME_NOREPLACE: atomic, and fails rather than replace a destination
    // that appeared during the restore (plain rename would silently replace
    // an empty folder).
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, dest_.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST) {
        return AlreadyExists(dest_.string() +
                             " appeared while the restore ran; nothing was replaced and the "
                             "restored copy was discarded: restore again to a new --dest");
      }
      return ErrnoError("rename " + staging_.string() + " to " + dest_.string());
    }
    committed_ = true;
    return SyncDir(dest_.parent_path());
  }
  fs::path staging_dir() const override { return committed_ ? fs::path() : staging_; }
  Status Preflight(uint64_t bytes) override {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(dest_, ec))) {
      return AlreadyExists(dest_.string() + ": destination exists; restore never overwrites");
    }
    struct statvfs v {};
    if (::statvfs(staging_.c_str(), &v) != 0) return ErrnoError("statvfs " + staging_.string());
    const unsigned __int128 free_bytes = static_cast<unsigned __int128>(v.f_bavail) * v.f_frsize;
    if (free_bytes < bytes) {
      return FailedPrecondition(dest_.parent_path().string() + " has " +
                                FormatBytes(static_cast<uint64_t>(free_bytes)) +
                                " free; the restore needs " + FormatBytes(bytes));
    }
    return Status::Ok();
  }
  void Abort() override {
    (void)writes_.Wait();  // nothing may still be writing into the file
    file_.reset();
    pending_.clear();  // closing an unnamed file frees it
    if (!committed_) RemoveAllQuietly(staging_);
  }

 private:
  fs::path dest_, staging_;
  int lock_fd_;             // the staging folder, flock()ed while this writer lives
  size_t max_unnamed_;      // descriptors we may hold for unnamed files
  bool unnamed_ok_ = true;  // false once the filesystem refused O_TMPFILE
  bool unnamed_ = false;    // the current file has no name yet
  fs::path path_;           // the current file's name in the staging folder
  std::vector<std::pair<std::unique_ptr<File>, fs::path>> pending_;  // verified at Commit
  std::unique_ptr<File> file_;
  std::unique_ptr<uint8_t, void (*)(void*)> bufs_[2] = {{nullptr, &std::free},
                                                        {nullptr, &std::free}};
  int cur_ = 0;
  BackgroundWrites writes_;
  bool direct_ = false;
  size_t used_ = 0;
  uint64_t size_ = 0;
  int64_t mtime_ = 0;  // of the current file
  bool committed_ = false;
};

class DiscardWriter : public ArtifactWriter {
 public:
  Status BeginFile(const FileEntry&) override { return Status::Ok(); }
  Status Write(ByteSpan) override { return Status::Ok(); }
  Status EndFile() override { return Status::Ok(); }
  Status Commit() override { return Status::Ok(); }
  void Abort() override {}
};

}  // namespace

namespace {

// Staging folders beside `dest` left by a run that died (no one holds their
// lock); removed, each named in `notes`.
void RemoveStalePartials(const fs::path& dest, std::vector<std::string>* notes) {
  const std::string prefix = "." + dest.filename().string() + ".qv-partial-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dest.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !e.is_directory(ec)) continue;
    int fd = ::open(e.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    const bool stale = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (stale) RemoveAllQuietly(e.path());
    ::close(fd);
    if (stale && notes != nullptr) {
      notes->push_back("removed " + e.path().string() + ", left by an interrupted restore");
    }
  }
}

// How many unnamed files may stay open at once: the descriptor limit, less
// room for sockets and everything else.
size_t UnnamedBudget() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 512;
  return r.rlim_cur > 256 ? std::min<size_t>(r.rlim_cur - 256, 65536) : 0;
}

}  // namespace

Result<std::unique_ptr<ArtifactWriter>> NewFolderWriter(const fs::path& dest_in,
                                                        std::vector<std::string>* notes) {
  std::error_code ec;
  fs::path dest = fs::absolute(dest_in, ec).lexically_normal();
  if (dest.filename().empty()) dest = dest.parent_path();
  if (fs::exists(fs::symlink_status(dest, ec))) {
    return AlreadyExists(dest_in.string() + ": destination exists; restore never overwrites");
  }
  fs::path parent = dest.parent_path();
  if (!fs::is_directory(parent, ec)) {
    return NotFound(parent.string() + ": destination's parent folder does not exist");
  }
  RemoveStalePartials(dest, notes);
  fs::path staging = parent / ("." + dest.filename().string() + ".qv-partial-" + RandomTag());
  if (!fs::create_directory(staging, ec) || ec) {
    return IoError(staging.string() + ": " + (ec ? ec.message() : "exists"));
  }
  ::chmod(staging.c_str(), 0700);
  int lock = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    Status st = ErrnoError("lock " + staging.string());
    if (lock >= 0) ::close(lock);
    RemoveAllQuietly(staging);
    return st;
  }
  return std::unique_ptr<ArtifactWriter>(new FolderWriter(dest, staging, lock, UnnamedBudget()));
}

std::unique_ptr<ArtifactWriter> NewDiscardWriter() { return std::make_unique<DiscardWriter>(); }

}  // namespace qv
