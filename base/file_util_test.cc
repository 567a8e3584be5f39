#include "base/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/temp_dir.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

class FileUtilTest : public ::testing::Test {
 protected:
  ScopedTempDir tmp_{"qv-file-test"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(FileUtilTest, WriteFileAtomicReplacesWithRequestedMode) {
  fs::path p = dir_ / "f";
  ASSERT_TRUE(WriteFileAtomic(p, AsBytes("one"), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(p, AsBytes("two!"), 0600).ok());
  auto b = ReadFileBytes(p, 100);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::string(b->begin(), b->end()), "two!");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary files remain beside it.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FileUtilTest, CreateNewRefusesToOverwrite) {
  fs::path p = dir_ / "f";
  ASSERT_TRUE(File::CreateNew(p, 0600).ok());
  auto again = File::CreateNew(p, 0600);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(FileUtilTest, ReadsAreBoundedAndShortReadsNamed) {
  fs::path p = dir_ / "f";
  ASSERT_TRUE(WriteFileAtomic(p, AsBytes("0123456789"), 0600).ok());
  EXPECT_EQ(ReadFileBytes(p, 5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadFileBytes(dir_ / "missing", 5).status().code(), StatusCode::kNotFound);
  auto f = File::OpenRead(p);
  ASSERT_TRUE(f.ok());
  Bytes buf(4);
  EXPECT_TRUE((*f)->PReadExact(buf, 6).ok());
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "6789");
  EXPECT_EQ((*f)->PReadExact(buf, 8).code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace qv
