#include "coordinator/artifact.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

}  // namespace
}  // namespace qv
