#include "coordinator/artifact.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/file_util.h"
#include "base/temp_dir.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

class ArtifactTest : public ::testing::Test {
 protected:
  ScopedTempDir tmp_{"qv-artifact-test"};
  const fs::path dir_ = tmp_.path();
  void Write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    ASSERT_TRUE(WriteFileAtomic(p, AsBytes(text), 0644).ok());
  }
};

TEST_F(ArtifactTest, FolderContributesSortedRelativePaths) {
  Write(dir_ / "m/config.json", "{}");
  Write(dir_ / "m/b/shard.safetensors", "12345");
  Write(dir_ / "m/a.txt", "");
  auto a = ScanPaths({dir_ / "m"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->name, "m");
  ASSERT_EQ(a->files.size(), 3u);
  EXPECT_EQ(a->files[0].path, "a.txt");
  EXPECT_EQ(a->files[1].path, "b/shard.safetensors");
  EXPECT_EQ(a->files[1].size, 5u);
  EXPECT_EQ(a->files[2].path, "config.json");
  EXPECT_EQ(a->TotalSize(), 7u);
}

TEST_F(ArtifactTest, SingleFileAndSeveralPathsAreNamedByBasename) {
  Write(dir_ / "w.safetensors", "abc");
  Write(dir_ / "tok/t.json", "x");
  auto one = ScanPaths({dir_ / "w.safetensors"});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->files[0].path, "w.safetensors");
  auto two = ScanPaths({dir_ / "w.safetensors", dir_ / "tok"});
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->files.size(), 2u);
  EXPECT_EQ(two->files[0].path, "tok/t.json");
  EXPECT_EQ(two->files[1].path, "w.safetensors");
}

TEST_F(ArtifactTest, SymlinkedFilesAreFollowedLikeAHuggingFaceSnapshot) {
  Write(dir_ / "blobs/abc123", "weights");
  fs::create_directories(dir_ / "snap");
  fs::create_symlink("../blobs/abc123", dir_ / "snap/model.safetensors");
  auto a = ScanPaths({dir_ / "snap"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(a->files.size(), 1u);
  EXPECT_EQ(a->files[0].size, 7u);
}

TEST_F(ArtifactTest, BadInputsAreNamed) {
  EXPECT_EQ(ScanPaths({dir_ / "missing"}).status().code(), StatusCode::kNotFound);
  fs::create_directories(dir_ / "d");
  fs::create_symlink(dir_ / "nowhere", dir_ / "d/dangling");
  auto dangling = ScanPaths({dir_ / "d"});
  EXPECT_FALSE(dangling.ok());
  EXPECT_NE(dangling.status().message().find("dangling"), std::string::npos);
  fs::remove(dir_ / "d/dangling");
  ASSERT_EQ(::mkfifo((dir_ / "d/fifo").c_str(), 0600), 0);
  auto fifo = ScanPaths({dir_ / "d"});
  EXPECT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find("not a regular file"), std::string::npos);
  Write(dir_ / "x/same", "1");
  Write(dir_ / "y/same", "2");
  EXPECT_FALSE(ScanPaths({dir_ / "x/same", dir_ / "y/same"}).ok());
}

TEST_F(ArtifactTest, FolderWriterPublishesOnlyOnCommit) {
  fs::path dest = dir_ / "out";
  auto w = NewFolderWriter(dest);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->BeginFile({"sub/a.bin", 3, {}}).ok());
  ASSERT_TRUE((*w)->Write(AsBytes("abc")).ok());
  ASSERT_TRUE((*w)->EndFile().ok());
  EXPECT_FALSE(fs::exists(dest));
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(fs::exists(dest / "sub/a.bin"));
  // No staging folders are left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(ArtifactTest, FolderWriterAbortLeavesNothingAndRefusesExistingDest) {
  fs::path dest = dir_ / "out";
  {
    auto w = NewFolderWriter(dest);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->BeginFile({"a", 3, {}}).ok());
    ASSERT_TRUE((*w)->Write(AsBytes("ab")).ok());
    (*w)->Abort();
  }
  EXPECT_FALSE(fs::exists(dest));
  EXPECT_TRUE(fs::is_empty(dir_));
  fs::create_directories(dest);
  EXPECT_EQ(NewFolderWriter(dest).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(NewFolderWriter(dir_ / "no/such/parent/out").status().code(), StatusCode::kNotFound);
}

// Regular files anywhere under `root`.
size_t RegularFiles(const fs::path& root) {
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(root)) n += e.is_regular_file();
  return n;
}

// Until Commit, the written (and verified) plaintext has no name anywhere:
// on disk (O_DIRECT) and on tmpfs (buffered) alike.
TEST_F(ArtifactTest, FolderWriterGivesPlaintextNoNameBeforeCommit) {
  ScopedTempDir shm{"/dev/shm/qv-artifact-test"};
  for (const fs::path& root : {dir_, fs::path("/dev/shm") / shm.path().filename()}) {
    fs::create_directories(root);
    SCOPED_TRACE(root.string());
    const fs::path dest = root / "out";
    auto w = NewFolderWriter(dest);
    ASSERT_TRUE(w.ok());
    const std::string data(5 << 20, 'w');
    for (const char* f : {"a.safetensors", "sub/b.json"}) {
      ASSERT_TRUE((*w)->BeginFile({f, data.size(), {}}).ok());
      ASSERT_TRUE((*w)->Write(AsBytes(data)).ok());
      ASSERT_TRUE((*w)->EndFile().ok());
    }
    EXPECT_EQ(RegularFiles(root), 0u);
    ASSERT_TRUE((*w)->Commit().ok());
    EXPECT_EQ(RegularFiles(root), 2u);
    EXPECT_EQ(fs::file_size(dest / "sub/b.json"), data.size());
  }
}

// A writer whose process died leaves its (locked, now unlocked) staging
// folder; the next writer for that destination removes it and says so,
// while a live writer's folder is left alone. Files are named here: with
// too few descriptors for unnamed files the writer falls back to names.
TEST_F(ArtifactTest, StaleStagingFromADeadRunIsRemovedAndALiveOneIsNot) {
  const fs::path dest = dir_ / "out";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit r{200, 200};  // no room for unnamed files: named fallback
    ::setrlimit(RLIMIT_NOFILE, &r);
    auto w = NewFolderWriter(dest);
    if (!w.ok() || !(*w)->BeginFile({"a.bin", 3, {}}).ok() || !(*w)->Write(AsBytes("abc")).ok() ||
        !(*w)->EndFile().ok()) {
      ::_exit(1);
    }
    ::_exit(0);  // dies without Abort: the plaintext stays, named, in staging
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(RegularFiles(dir_), 1u);
  auto live = NewFolderWriter(dir_ / "other");
  ASSERT_TRUE(live.ok());
  std::vector<std::string> notes;
  auto w = NewFolderWriter(dest, &notes);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("left by an interrupted restore"), std::string::npos) << notes[0];
  EXPECT_EQ(RegularFiles(dir_), 0u);
  // Two staging folders remain: the live writers' own.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

// A destination that appears while the restore runs is never replaced, empty
// or not; the error says what happened, and no staging folder is left.
TEST_F(ArtifactTest, FolderWriterNeverReplacesADestinationThatAppearedMeanwhile) {
  for (bool with_file : {false, true}) {
    SCOPED_TRACE(with_file ? "non-empty" : "empty");
    fs::path dest = dir_ / (with_file ? "full" : "empty");
    auto w = NewFolderWriter(dest);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Preflight(3).ok());
    ASSERT_TRUE((*w)->BeginFile({"a.bin", 3, {}}).ok());
    ASSERT_TRUE((*w)->Write(AsBytes("abc")).ok());
    ASSERT_TRUE((*w)->EndFile().ok());
    fs::create_directories(dest);
    if (with_file) Write(dest / "mine.txt", "someone else's");
    Status st = (*w)->Commit();
    EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
    EXPECT_NE(st.message().find("appeared while the restore ran; nothing was replaced"),
              std::string::npos)
        << st.message();
    (*w)->Abort();
    EXPECT_FALSE(fs::exists(dest / "a.bin"));
    if (with_file) {
      EXPECT_TRUE(fs::exists(dest / "mine.txt"));
    }
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

TEST_F(ArtifactTest, PreflightRefusesWhatDoesNotFitOrADestinationThatAppeared) {
  fs::path dest = dir_ / "out";
  auto w = NewFolderWriter(dest);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE((*w)->Preflight(1 << 20).ok());
  Status st = (*w)->Preflight(uint64_t{1} << 62);  // 4 EiB: no disk here has that free
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("free; the restore needs 4194304.00 TiB"), std::string::npos)
      << st.message();
  fs::create_directories(dest);
  EXPECT_EQ((*w)->Preflight(1).code(), StatusCode::kAlreadyExists);
  (*w)->Abort();
}

// /dev/shm is tmpfs, which refuses O_DIRECT: the writer must fall back to
// buffered writes and still produce exact files, odd sizes included.
TEST(FolderWriterFallbackTest, WritesExactFilesWhereODirectIsUnsupported) {
  fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  fs::path dest = base / ("qv-fallback-" + RandomTag());
  auto w = NewFolderWriter(dest);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::string big(5 * 1024 * 1024 + 123, 'q');
  ASSERT_TRUE((*w)->BeginFile({"a.bin", big.size(), {}}).ok());
  ASSERT_TRUE((*w)->Write(AsBytes(big)).ok());
  ASSERT_TRUE((*w)->EndFile().ok());
  ASSERT_TRUE((*w)->BeginFile({"b.txt", 3, {}}).ok());
  ASSERT_TRUE((*w)->Write(AsBytes("xyz")).ok());
  ASSERT_TRUE((*w)->EndFile().ok());
  ASSERT_TRUE((*w)->Commit().ok());
  auto a = ReadFileBytes(dest / "a.bin", 1 << 30);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(std::string(a->begin(), a->end()), big);
  EXPECT_EQ(fs::file_size(dest / "b.txt"), 3u);
  fs::remove_all(dest);
}

TEST_F(ArtifactTest, DirectWritesGiveExactBytesAcrossBufferBoundaries) {
  // Two 4 MiB buffers alternate (one written in the background while the
  // other fills), so sizes straddle one, two and three buffers, written in
  // odd pieces; the bytes never repeat with a buffer's period, and two files share a writer.
  constexpr size_t kMiB = 1 << 20;
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, 4 * kMiB - 1, 4 * kMiB,
                      4 * kMiB + 1, 8 * kMiB, 8 * kMiB + 1, 12 * kMiB + 7}) {
    fs::path dest = dir_ / ("out-" + std::to_string(size));
    auto w = NewFolderWriter(dest);
    ASSERT_TRUE(w.ok());
    Bytes data(size);
    uint64_t x = 0x9e3779b97f4a7c15u ^ size;  // xorshift: no period a buffer could hide
    for (auto& b : data) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = static_cast<uint8_t>(x >> 32);
    }
    for (const char* name : {"a", "b"}) {
      ASSERT_TRUE((*w)->BeginFile({name, size, {}}).ok());
      for (size_t off = 0; off < size; off += kMiB + 3) {
        ByteSpan piece(data.data() + off, std::min(kMiB + 3, size - off));
        ASSERT_TRUE((*w)->Write(piece).ok());
      }
      ASSERT_TRUE((*w)->EndFile().ok());
    }
    ASSERT_TRUE((*w)->Commit().ok());
    for (const char* name : {"a", "b"}) {
      auto back = ReadFileBytes(dest / name, 1 << 30);
      ASSERT_TRUE(back.ok());
      EXPECT_TRUE(*back == data) << name << " " << size;
    }
  }
}

}  // namespace
}  // namespace qv
