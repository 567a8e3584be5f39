// Custodian and requester keys in hardware tokens (issue 16), on a real
// loopback cluster with real SoftHSM2 tokens: the keys are made inside the
// tokens by `qv keygen --pkcs11`, drive the whole ceremony through the
// cluster, and nothing but the token signs for them: not the old key
// files, not the channel key, not a process without the token or its PIN.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "crypto/pkcs11.h"
#include "tests/cluster_fixture.h"

namespace qv {
namespace {

using ::qv::testing::ExpectSameTree;

class TokenCeremonyTest : public ClusterTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(std::string(kDefaultPkcs11Module).c_str(), R_OK), 0)
        << "SoftHSM2 is not installed (scripts/install-deps.sh installs softhsm2)";
    ClusterTest::SetUp();
    UseSoftHsm({"alice", "ops"});
  }

  // Makes a key in `token` with qv and puts it in the cluster file as the
  // key of principal `id` (the lines `qv keygen --pkcs11` prints, pasted
  // over the entry's public_key line). Returns the public key line.
  std::string EnrollTokenKey(const std::string& token, const std::string& id) {
    Outcome k = Qv("keygen --pkcs11 'pkcs11:token=" + token + ";object=" + id + "'");
    EXPECT_EQ(k.code, 0) << k.err;
    EXPECT_NE(k.out.find("channel_key = \"ed25519:"), std::string::npos) << k.out;
    const fs::path cf = dir() / "cl/cluster.toml";
    std::string toml = Slurp(cf);
    const size_t entry = toml.find("id = \"" + id + "\"\npublic_key = ");
    EXPECT_NE(entry, std::string::npos) << id;
    const size_t line = toml.find("public_key", entry);
    const size_t end = toml.find('\n', line);
    toml.replace(line, end + 1 - line, k.out);
    std::ofstream(cf, std::ios::trunc) << toml;
    return k.out.substr(0, k.out.find('\n'));
  }
};

TEST_F(TokenCeremonyTest, KeysInTokensDriveTheCeremonyAndNothingElseSignsForThem) {
  const std::string alice = "'pkcs11:token=alice;object=c1'";
  const std::string ops = "'pkcs11:token=ops;object=operator'";
  // A second key of the same label in the same token is refused.
  ASSERT_EQ(Qv("keygen --pkcs11 " + alice).code, 0);
  Outcome again = Qv("keygen --pkcs11 " + alice);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("already holds c1"), std::string::npos) << again.err;
  ASSERT_EQ(std::system(("softhsm2-util --delete-token --token alice >/dev/null && "
                         "softhsm2-util --init-token --free --label alice --pin 1234 "
                         "--so-pin 5678 >/dev/null")),
            0);
  EnrollTokenKey("alice", "c1");
  EnrollTokenKey("ops", "operator");
  ASSERT_EQ(Qv("cluster down --dir cl").code, 0);
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 2").code, 0);
  const std::string id = Backup("model");

  // The requester's key is in its token: the request is signed there and
  // submitted over the channel the token's channel key proves.
  Outcome sub = Qv("restore request --cluster cl/cluster.toml --key " + ops + " --backup " + id +
                   " --purpose 'token drill' --out req --submit");
  ASSERT_EQ(sub.code, 0) << sub.err;
  EXPECT_NE(sub.out.find("submitted to 6 of 6 nodes"), std::string::npos) << sub.out;
  auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / "req", 1 << 16));
  ASSERT_TRUE(sr.ok());
  const std::string rid = RequestIdToText(sr->id());

  // c1's old key file is no longer c1: it sees nothing and signs nothing.
  Outcome old_list = Qv("pending --cluster cl/cluster.toml --key cl/custodians/c1.key");
  EXPECT_EQ(old_list.code, 1) << old_list.out;
  EXPECT_NE(old_list.err.find("no node answered"), std::string::npos) << old_list.err;
  Outcome old =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c1.key req --out "
         "old.c1");
  EXPECT_NE(old.code, 0);
  EXPECT_NE(old.err.find("not a custodian of this backup's policy"), std::string::npos) << old.err;
  EXPECT_FALSE(fs::exists(dir() / "old.c1"));

  // Without the token, or with a wrong PIN, or with no PIN and no
  // terminal to ask on: nothing is signed.
  ::setenv("SOFTHSM2_CONF", (dir() / "no-token.conf").c_str(), 1);
  Outcome gone = Qv("approve --yes --cluster cl/cluster.toml --key " + alice + " --request " + rid);
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.err.find("no PKCS#11 token labelled alice"), std::string::npos) << gone.err;
  ::setenv("SOFTHSM2_CONF", (dir() / "softhsm2.conf").c_str(), 1);
  ::setenv("QV_PKCS11_PIN", "0000", 1);
  Outcome wrong =
      Qv("approve --yes --cluster cl/cluster.toml --key " + alice + " --request " + rid);
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("wrong PIN"), std::string::npos) << wrong.err;
  ::unsetenv("QV_PKCS11_PIN");
  Outcome nopin = Qv("pending --cluster cl/cluster.toml --key " + alice + " </dev/null");
  EXPECT_EQ(nopin.code, 1);
  EXPECT_NE(nopin.err.find("QV_PKCS11_PIN"), std::string::npos) << nopin.err;
  ::setenv("QV_PKCS11_PIN", "1234", 1);

  // The custodian in the token lists and approves through the cluster,
  // beside two custodians with key files.
  Outcome list = Qv("pending --cluster cl/cluster.toml --key " + alice);
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find(rid.substr(0, 16)), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("token drill"), std::string::npos) << list.out;
  for (const std::string& key : {alice, std::string("cl/custodians/c2.key")}) {
    Outcome ok = Qv("approve --yes --cluster cl/cluster.toml --key " + key + " --request " + rid);
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find("posted to 6 of 6 nodes"), std::string::npos) << ok.out;
  }

  // The channel key (readable by a PIN holder) proves c1 on a channel but
  // is not c1's signing key: an approval it signs counts for nothing.
  {
    auto s = Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=alice;object=c1"), "1234");
    ASSERT_TRUE(s.ok()) << s.status().message();
    auto signer = Pkcs11Signer::New(std::move(*s), "c1");
    ASSERT_TRUE(signer.ok());
    auto channel = (*signer)->ChannelKey();
    ASSERT_TRUE(channel.ok());
    auto forged = Approval::Sign(*sr, **channel, "c1", true, "", std::time(nullptr));
    ASSERT_TRUE(forged.ok());
    ASSERT_TRUE(WriteFileAtomic(dir() / "forged.c1", forged->Encode(), 0600).ok());
  }
  std::string files;
  for (const char* c : {"c2", "c3"}) {
    ASSERT_EQ(Qv(std::string("approve --yes --cluster cl/cluster.toml --key cl/custodians/") + c +
                 ".key req --out file." + c)
                  .code,
              0);
    files += std::string(" --approval file.") + c;
  }
  Outcome forged = Qv("restore run --cluster cl/cluster.toml --key " + ops +
                      " --request req --approval forged.c1" + files + " --dest nope");
  EXPECT_NE(forged.code, 0);
  EXPECT_NE(forged.err.find("unknown custodian c1"), std::string::npos) << forged.err;
  EXPECT_FALSE(fs::exists(dir() / "nope"));

  // c3 votes through the cluster too; the requester's token restores with
  // the votes the nodes hold (c1's from its token, c2's and c3's).
  Outcome c3 = Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c3.key --request " +
                  rid.substr(0, 12));
  ASSERT_EQ(c3.code, 0) << c3.err;
  Outcome run =
      Qv("restore run --cluster cl/cluster.toml --key " + ops + " --request req --dest restored");
  ASSERT_EQ(run.code, 0) << run.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  Outcome audit = Qv("audit log --cluster cl/cluster.toml --key " + ops + " --backup " + id);
  ASSERT_EQ(audit.code, 0) << audit.err;
  EXPECT_NE(audit.out.find("approval"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("c1"), std::string::npos) << audit.out;
}

}  // namespace
}  // namespace qv
