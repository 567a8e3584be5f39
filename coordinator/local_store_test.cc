#include "coordinator/local_store.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <fstream>

#include "base/corrupt.h"
#include "base/file_util.h"
#include "base/temp_dir.h"
#include "coordinator/pipeline.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "in");
    data_.resize(300000);
    randombytes_buf(data_.data(), data_.size());
    ASSERT_TRUE(WriteFileAtomic(dir_ / "in/w.safetensors", data_, 0644).ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ / "in/config.json", AsBytes("{}"), 0644).ok());
    signer_ = std::move(SigningKey::Generate()).value();
    store_ = std::move(LocalStore::Open(dir_ / "vault")).value();
  }
  BackupId Backup() {
    auto a = ScanPaths({dir_ / "in"});
    BackupOptions opt;
    opt.max_unit_size = 4096;
    auto r = RunBackup(*a, *store_, *signer_, opt);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r->manifest.manifest().backup_id;
  }

  Result<RestoreReport> Restore(const BackupId& id, const fs::path& dest,
                                std::vector<std::string>* problems) {
    auto sm = store_->LoadManifest(id, &signer_->public_key(), problems);
    if (!sm.ok()) return sm.status();
    auto w = NewFolderWriter(dest);
    if (!w.ok()) return w.status();
    return RunRestore(*sm, store_->OpenSources(*sm, problems), store_->ReadShares(*sm, problems),
                      **w, RestoreOptions{});
  }

  fs::path NodeDir(const BackupId& id, uint32_t f) {
    return dir_ / "vault" / LocalStore::NodeName(f) / "backups" / BackupIdToText(id);
  }

  ScopedTempDir tmp_{"qv-local-test"};
  const fs::path dir_ = tmp_.path();
  Bytes data_;
  std::unique_ptr<SigningKey> signer_;
  std::unique_ptr<LocalStore> store_;
};

TEST_F(LocalStoreTest, LayoutHoldsSealedSharesAndPrivateFiles) {
  BackupId id = Backup();
  for (uint32_t f = 0; f < 6; ++f) {
    fs::path d = NodeDir(id, f);
    for (const char* name : {"fragment", "leaves", "share.sealed", "manifest"}) {
      EXPECT_TRUE(fs::exists(d / name)) << d / name;
    }
    struct stat st;
    ASSERT_EQ(::stat((d / "share.sealed").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u);
    ASSERT_EQ(::stat((d.parent_path().parent_path() / "node.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u);
  }
  // No staging folders remain after a successful backup.
  for (auto& e : fs::directory_iterator(NodeDir(id, 0).parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos);
  }
  EXPECT_EQ(store_->ListBackups().size(), 1u);
}

TEST_F(LocalStoreTest, RestoresAfterLosingMFragmentsAndNMinusTShares) {
  BackupId id = Backup();
  fs::remove(NodeDir(id, 0) / "fragment");
  fs::remove_all(NodeDir(id, 4));
  fs::remove(NodeDir(id, 1) / "share.sealed");
  fs::remove(NodeDir(id, 2) / "share.sealed");
  std::vector<std::string> problems;
  auto r = Restore(id, dir_ / "out", &problems);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto back = ReadFileBytes(dir_ / "out/w.safetensors", 1 << 30);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data_);
  EXPECT_GE(problems.size(), 3u);
}

TEST_F(LocalStoreTest, CorruptedFragmentOnDiskIsNamedAndRoutedAround) {
  BackupId id = Backup();
  ASSERT_TRUE(CorruptByte(NodeDir(id, 2) / "fragment", 9000));
  std::vector<std::string> problems;
  auto r = Restore(id, dir_ / "out", &problems);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_NE(r->problems[0].find("node-02: fragment 2 unit 2 does not match"), std::string::npos)
      << r->problems[0];
  EXPECT_EQ(*ReadFileBytes(dir_ / "out/w.safetensors", 1 << 30), data_);
}

TEST_F(LocalStoreTest, FailedRestoreLeavesNoOutput) {
  BackupId id = Backup();
  for (uint32_t f : {0, 1, 2}) fs::remove(NodeDir(id, f) / "fragment");
  std::vector<std::string> problems;
  auto r = Restore(id, dir_ / "out", &problems);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  for (auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find("partial"), std::string::npos) << e.path();
  }
}

TEST_F(LocalStoreTest, ManifestCopiesMustAgreeAndVerify) {
  BackupId id = Backup();
  // One node's manifest is replaced by garbage: others still serve.
  ASSERT_TRUE(WriteFileAtomic(NodeDir(id, 3) / "manifest", AsBytes("junk"), 0644).ok());
  std::vector<std::string> problems;
  auto sm = store_->LoadManifest(id, &signer_->public_key(), &problems);
  ASSERT_TRUE(sm.ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("node-03: manifest rejected"), std::string::npos);
  // A manifest signed by someone else is refused when the signer is pinned.
  auto other = SigningKey::Generate();
  problems.clear();
  EXPECT_FALSE(store_->LoadManifest(id, &(*other)->public_key(), &problems).ok());
}

TEST_F(LocalStoreTest, InterruptedUploadIsNeverVisible) {
  auto sinks = store_->OpenSinks(BackupId{1, 2, 3}, 6, 64, 1);
  ASSERT_TRUE(sinks.ok());
  ASSERT_TRUE((*sinks)[0]->Append(AsBytes("partial unit")).ok());
  EXPECT_TRUE(store_->ListBackups().empty());
  sinks->clear();  // destroyed without Publish: aborted
  for (auto& e : fs::recursive_directory_iterator(dir_ / "vault")) {
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
  }
}

TEST_F(LocalStoreTest, SealedShareDoesNotOpenUnderAnotherNodesKey) {
  BackupId id = Backup();
  fs::copy_file(dir_ / "vault/node-01/node.key", dir_ / "vault/node-00/node.key",
                fs::copy_options::overwrite_existing);
  std::vector<std::string> problems;
  auto sm = store_->LoadManifest(id, nullptr, &problems);
  ASSERT_TRUE(sm.ok());
  auto shares = store_->ReadShares(*sm, &problems);
  EXPECT_EQ(shares.size(), 5u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("node-00: share unreadable"), std::string::npos);
}

}  // namespace
}  // namespace qv
