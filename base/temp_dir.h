// ScopedTempDir: a fresh folder under the system temp dir, removed with
// everything in it on destruction. For tests and benchmarks.
#ifndef QV_BASE_TEMP_DIR_H_
#define QV_BASE_TEMP_DIR_H_

#include <filesystem>
#include <string>

#include "base/file_util.h"

namespace qv {

class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& prefix = "qv")
      : path_(std::filesystem::temp_directory_path() / (prefix + "-" + RandomTag())) {
    std::filesystem::create_directories(path_);
  }
  ~ScopedTempDir() { RemoveAllQuietly(path_); }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace qv

#endif  // QV_BASE_TEMP_DIR_H_
