#include "crypto/identity.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "crypto/secret.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

class IdentityTest : public ::testing::Test {
 protected:
  ScopedTempDir tmp_{"qv-id-test"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(IdentityTest, SignaturesVerifyOnlyForTheSignedMessageAndKey) {
  auto a = SigningKey::Generate();
  auto b = SigningKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  Signature sig = (*a)->Sign(AsBytes("hello"));
  EXPECT_TRUE(VerifySignature((*a)->public_key(), AsBytes("hello"), sig).ok());
  EXPECT_EQ(VerifySignature((*a)->public_key(), AsBytes("hellO"), sig).code(),
            StatusCode::kUnauthenticated);
  EXPECT_FALSE(VerifySignature((*b)->public_key(), AsBytes("hello"), sig).ok());
  sig[10] ^= 1;
  EXPECT_FALSE(VerifySignature((*a)->public_key(), AsBytes("hello"), sig).ok());
}

TEST_F(IdentityTest, KeyFileIsWritten0600AndLoadsTheSameIdentity) {
  auto k = SigningKey::Generate();
  ASSERT_TRUE(k.ok());
  fs::path p = dir_ / "id.key";
  ASSERT_TRUE((*k)->Save(p).ok());
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = SigningKey::Load(p);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->public_key(), (*k)->public_key());
  // Never overwritten.
  EXPECT_EQ((*k)->Save(p).code(), StatusCode::kAlreadyExists);
}

TEST_F(IdentityTest, KeyFileReadableByOthersIsRefused) {
  auto k = SigningKey::Generate();
  fs::path p = dir_ / "id.key";
  ASSERT_TRUE((*k)->Save(p).ok());
  for (mode_t mode : {0640, 0604, 0644}) {
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
    auto loaded = SigningKey::Load(p);
    EXPECT_EQ(loaded.status().code(), StatusCode::kPermissionDenied) << std::oct << mode;
    EXPECT_NE(loaded.status().message().find("chmod 600"), std::string::npos);
  }
}

// A FIFO would block a plain open() forever; a directory or a device is not
// a key. Each is refused at once, naming what it is, by both key readers.
TEST_F(IdentityTest, AFifoADirectoryOrADeviceIsRefusedAtOnceNotWaitedOn) {
  const fs::path fifo = dir_ / "fifo.key";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const fs::path folder = dir_ / "folder.key";
  fs::create_directory(folder);
  ::chmod(folder.c_str(), 0700);
  for (const auto& [path, kind] : std::vector<std::pair<fs::path, std::string>>{
           {fifo, "is a FIFO"}, {folder, "is a directory"}, {"/dev/null", "is a device"}}) {
    const auto start = std::chrono::steady_clock::now();
    auto loaded = SigningKey::Load(path);
    auto secret = ReadSecretFile(path, 32);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    ASSERT_FALSE(loaded.ok());
    ASSERT_FALSE(secret.ok());
    for (const Status& st : {loaded.status(), secret.status()}) {
      EXPECT_NE(st.message().find(kind + ", not a key file"), std::string::npos) << st.message();
    }
  }
}

TEST_F(IdentityTest, MalformedKeyFilesAreRefused) {
  for (const std::string& text :
       {std::string(""), std::string("not a key\n"),
        std::string("quorumvault-ed25519-secret-key-v1\nzz") + std::string(62, '0') + "\n"}) {
    fs::path p = dir_ / ("bad-" + RandomTag());
    ASSERT_TRUE(WriteFileAtomic(p, AsBytes(text), 0600).ok());
    EXPECT_EQ(SigningKey::Load(p).status().code(), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_FALSE(SigningKey::Load(dir_ / "missing").ok());
}

TEST_F(IdentityTest, PublicKeyTextRoundTripsAndRejectsGarbage) {
  auto k = SigningKey::Generate();
  std::string text = PublicKeyToText((*k)->public_key());
  EXPECT_EQ(text.rfind("ed25519:", 0), 0u);
  auto back = PublicKeyFromText(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (*k)->public_key());
  EXPECT_TRUE(PublicKeyFromText(text.substr(8)).ok());  // prefix optional
  EXPECT_FALSE(PublicKeyFromText("ed25519:1234").ok());
  EXPECT_FALSE(PublicKeyFromText(std::string("ed25519:") + std::string(64, 'g')).ok());
}

}  // namespace
}  // namespace qv
