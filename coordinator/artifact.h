// An artifact is an ordered list of files (a model folder: safetensors shards,
// tokenizer, config) streamed as one plaintext. Sources and writers are
// interfaces so tests and benchmarks can run from and into memory.
#ifndef QV_COORDINATOR_ARTIFACT_H_
#define QV_COORDINATOR_ARTIFACT_H_

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "manifest/manifest.h"

namespace qv {

class ByteReader {
 public:
  virtual ~ByteReader() = default;
  // Up to buf.size() bytes; 0 only at end of input.
  virtual Result<size_t> Read(MutableByteSpan buf) = 0;
};

struct SourceFile {
  std::string path;  // relative path inside the artifact
  uint64_t size = 0;
  std::function<Result<std::unique_ptr<ByteReader>>()> open;
  int64_t mtime_unix = 0;  // 0: unknown (not recorded)
};

struct Artifact {
  std::string name;
  std::string source_path;
  std::vector<SourceFile> files;  // sorted by path
  uint64_t TotalSize() const;
};

// A file becomes one entry named by its basename; a folder contributes its
// regular files (symlinks to files followed) under their relative paths.
// Several paths each contribute under their basename. Errors name the path:
// missing, special file, symlinked directory, duplicate names.
Result<Artifact> ScanPaths(const std::vector<std::filesystem::path>& paths);

// The model's own name when its folder says it (issue 17), else "": a
// Hugging Face cache snapshot (.../models--ORG--NAME/snapshots/REV) gives
// ORG/NAME; else config.json's `_name_or_path` when it is a repo id rather
// than a local path. Only names ValidateBackupName accepts.
std::string ModelNameOf(const std::filesystem::path& folder);

// An artifact over caller-owned memory (tests, benchmarks). The spans must
// outlive every reader opened from it.
Artifact MemoryArtifact(std::string name, std::vector<std::pair<std::string, ByteSpan>> files);

// Receives a restored artifact file by file, in manifest order.
class ArtifactWriter {
 public:
  virtual ~ArtifactWriter() = default;
  virtual Status BeginFile(const FileEntry& entry) = 0;
  virtual Status Write(ByteSpan data) = 0;
  virtual Status EndFile() = 0;
  // Before anything irrevocable (a certificate spent): can `bytes` of files
  // still be written where this writer puts them?
  virtual Status Preflight(uint64_t /*bytes*/) { return Status::Ok(); }
  // Called once every file is written and verified: make it visible. Never
  // replaces anything that appeared at the destination meanwhile.
  virtual Status Commit() = 0;
  // Discards everything written so far; safe to call more than once.
  virtual void Abort() = 0;
  // The folder that holds what is written until Commit, if any: what a
  // signal handler removes when the process is told to stop.
  virtual std::filesystem::path staging_dir() const { return {}; }
};

// Writes into a hidden staging folder beside `dest` and renames it to `dest`
// only on Commit(), so a failed restore never leaves a complete-looking
// artifact. `dest` must not exist. Files are created 0600, unnamed until
// Commit() where the filesystem allows (O_TMPFILE), so a killed process
// leaves no plaintext. Staging folders an earlier, interrupted run left
// beside `dest` are removed first, each named in `notes` (if given).
Result<std::unique_ptr<ArtifactWriter>> NewFolderWriter(const std::filesystem::path& dest,
                                                        std::vector<std::string>* notes = nullptr);

// Keeps nothing (benchmarks); the pipeline still hashes and verifies.
std::unique_ptr<ArtifactWriter> NewDiscardWriter();

}  // namespace qv

#endif  // QV_COORDINATOR_ARTIFACT_H_
