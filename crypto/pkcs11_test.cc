#include "crypto/pkcs11.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "base/temp_dir.h"

namespace qv {
namespace {

// A real SoftHSM2 token in a folder of its own (SOFTHSM2_CONF), so nothing
// is mocked and nothing outside the test is touched.
class Pkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(std::string(kDefaultPkcs11Module).c_str(), R_OK), 0)
        << "SoftHSM2 is not installed (scripts/install-deps.sh installs softhsm2)";
    std::filesystem::create_directories(tmp_.path() / "tokens");
    std::ofstream(tmp_.path() / "softhsm2.conf")
        << "directories.tokendir = " << (tmp_.path() / "tokens").string()
        << "\nobjectstore.backend = file\nlog.level = ERROR\n";
    ::setenv("SOFTHSM2_CONF", (tmp_.path() / "softhsm2.conf").c_str(), 1);
    InitToken("qv-test");
  }
  void InitToken(const std::string& label) {
    const std::string cmd = "softhsm2-util --init-token --free --label " + label +
                            " --pin 1234 --so-pin 5678 >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  ScopedTempDir tmp_{"qv-pkcs11-test"};
};

TEST_F(Pkcs11Test, UriNamesTokenObjectModuleAndPin) {
  auto u = Pkcs11Uri::Parse("pkcs11:token=qv-test;object=node-00?module-path=/x/y.so&pin-value=9");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->token, "qv-test");
  EXPECT_EQ(u->object, "node-00");
  EXPECT_EQ(u->module_path, "/x/y.so");
  EXPECT_EQ(u->pin, "9");
  for (const char* bad : {"pkcs11:object=x", "pkcs11:token=t", "file:///x", "pkcs11:token=%zz"}) {
    EXPECT_FALSE(Pkcs11Uri::Parse(bad).ok()) << bad;
  }
}

TEST_F(Pkcs11Test, AKeyWrappedByTheTokenOpensOnlyWithThatTokenAndContext) {
  auto uri = *Pkcs11Uri::Parse("pkcs11:token=qv-test;object=wrap");
  auto s = Pkcs11Session::Open(uri, "1234");
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE((*s)->GenerateWrappingKey("wrap").ok());
  EXPECT_EQ((*s)->GenerateWrappingKey("wrap").code(), StatusCode::kAlreadyExists);
  const SecretBytes master = SecretBytes::Random(32);
  auto wrapped = (*s)->Wrap("wrap", master, AsBytes("node-00"));
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().message();
  // Nothing of the key is in the wrapped form.
  EXPECT_EQ(std::search(wrapped->begin(), wrapped->end(), master.data(), master.data() + 32),
            wrapped->end());
  auto back = (*s)->Unwrap("wrap", *wrapped, AsBytes("node-00"));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->Equals(master));
  EXPECT_EQ((*s)->Unwrap("wrap", *wrapped, AsBytes("node-01")).status().code(),
            StatusCode::kUnauthenticated);
  Bytes flipped = *wrapped;
  flipped.back() ^= 1;
  EXPECT_FALSE((*s)->Unwrap("wrap", flipped, AsBytes("node-00")).ok());
  s->reset();
  // Another token with a key of the same label does not open it.
  InitToken("other");
  auto o = Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=other;object=wrap"), "1234");
  ASSERT_TRUE(o.ok()) << o.status().message();
  ASSERT_TRUE((*o)->GenerateWrappingKey("wrap").ok());
  EXPECT_EQ((*o)->Unwrap("wrap", *wrapped, AsBytes("node-00")).status().code(),
            StatusCode::kUnauthenticated);
  // A wrong PIN opens nothing.
  auto bad = Pkcs11Session::Open(uri, "0000");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kPermissionDenied) << bad.status().message();
}

// An Ed25519 key made inside the token signs through CKM_EDDSA; the
// signature verifies with libsodium under the public key the token
// reports, and the private half cannot be read out.
TEST_F(Pkcs11Test, AnEd25519KeyInTheTokenSignsAndNeverLeavesIt) {
  auto uri = *Pkcs11Uri::Parse("pkcs11:token=qv-test;object=alice");
  auto s = Pkcs11Session::Open(uri, "1234");
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto pk = (*s)->GenerateSigningKey("alice");
  ASSERT_TRUE(pk.ok()) << pk.status().message();
  EXPECT_EQ((*s)->GenerateSigningKey("alice").status().code(), StatusCode::kAlreadyExists);
  auto signer = Pkcs11Signer::New(std::move(*s), "alice");
  ASSERT_TRUE(signer.ok()) << signer.status().message();
  EXPECT_EQ((*signer)->public_key(), *pk);
  for (size_t len : {0, 1, 64, 4096}) {
    const Bytes msg(len, 0x5a);
    auto sig = (*signer)->SignMessage(msg);
    ASSERT_TRUE(sig.ok()) << sig.status().message();
    EXPECT_TRUE(VerifySignature(*pk, msg, *sig).ok()) << len;
    Bytes other = msg;
    other.push_back(1);
    EXPECT_FALSE(VerifySignature(*pk, other, *sig).ok());
  }
  // The channel key is a different identity, the same on every read.
  auto ch = (*signer)->ChannelKey();
  ASSERT_TRUE(ch.ok()) << ch.status().message();
  EXPECT_NE((*ch)->public_key(), *pk);
  EXPECT_EQ((*(*signer)->ChannelKey())->public_key(), (*ch)->public_key());
  // Another label, a missing key, a wrong PIN: no signer.
  auto s2 = Pkcs11Session::Open(uri, "1234");
  EXPECT_EQ(Pkcs11Signer::New(std::move(*s2), "bob").status().code(), StatusCode::kNotFound);
  signer->reset();  // PKCS#11 logins are per process: log out first
  EXPECT_EQ(Pkcs11Session::Open(uri, "0000").status().code(), StatusCode::kPermissionDenied);
  // A wrapping key of that label is not a signing key.
  auto s3 = Pkcs11Session::Open(uri, "1234");
  ASSERT_TRUE((*s3)->GenerateWrappingKey("wrapper").ok());
  EXPECT_FALSE(Pkcs11Signer::New(std::move(*s3), "wrapper").ok());
}

// The module is the URI's module-path, else QV_PKCS11_MODULE, else
// SoftHSM2's; a path that is no module is an error naming it.
TEST_F(Pkcs11Test, TheModuleComesFromTheUriElseTheEnvironment) {
  ::setenv("QV_PKCS11_MODULE", "/nonexistent/libp11.so", 1);
  auto env = Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=qv-test;object=k"), "1234");
  EXPECT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("/nonexistent/libp11.so"), std::string::npos)
      << env.status().message();
  auto uri = Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=qv-test;object=k?module-path=" +
                                                   std::string(kDefaultPkcs11Module)),
                                 "1234");
  EXPECT_TRUE(uri.ok()) << uri.status().message();
  uri->reset();
  ::setenv("QV_PKCS11_MODULE", "/usr/lib/x86_64-linux-gnu/libc.so.6", 1);
  auto not_module = Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=qv-test;object=k"), "1234");
  EXPECT_FALSE(not_module.ok());
  ::unsetenv("QV_PKCS11_MODULE");
  EXPECT_TRUE(Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=qv-test;object=k"), "1234").ok());
}

}  // namespace
}  // namespace qv
