#include "crypto/noise.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/identity.h"

namespace qv::noise {
namespace {

struct NoiseVector {
  std::string file;
  nlohmann::json v;
};

// ../shared/vectors/noise beside the checkout (QV_SHARED_VECTORS_DIR).
std::vector<NoiseVector> LoadVectors() {
  std::vector<NoiseVector> out;
  for (const char* f : {"cacophony-selected.json", "snow-selected.json"}) {
    std::ifstream in(std::string(QV_SHARED_VECTORS_DIR) + "/noise/" + f);
    if (!in) continue;
    const nlohmann::json doc = nlohmann::json::parse(in);
    for (const auto& v : doc.at("vectors")) out.push_back({f, v});
  }
  return out;
}

Bytes Hex(const nlohmann::json& v, const char* key) {
  return v.contains(key) ? *HexDecode(v.at(key).get<std::string>()) : Bytes();
}

class NoiseVectorTest : public ::testing::TestWithParam<NoiseVector> {};

TEST_P(NoiseVectorTest, HandshakeAndTransportMatchTheVector) {
  const auto& v = GetParam().v;
  auto pattern = ParseProtocolName(v.at("protocol_name").get<std::string>());
  ASSERT_TRUE(pattern.ok());
  SecretBytes ie = SecretBytes::CopyFrom(Hex(v, "init_ephemeral"));
  SecretBytes re = SecretBytes::CopyFrom(Hex(v, "resp_ephemeral"));
  SecretBytes is = SecretBytes::CopyFrom(Hex(v, "init_static"));
  SecretBytes rs = SecretBytes::CopyFrom(Hex(v, "resp_static"));
  HandshakeConfig ic{*pattern, true, Hex(v, "init_prologue"), is.empty() ? nullptr : &is, {}, &ie};
  HandshakeConfig rc{*pattern, false, Hex(v, "resp_prologue"), rs.empty() ? nullptr : &rs, {}, &re};
  if (v.contains("init_remote_static")) {
    DhPublic k{};
    Bytes b = Hex(v, "init_remote_static");
    std::copy(b.begin(), b.end(), k.begin());
    ic.remote_static = k;
  }
  auto init = HandshakeState::New(ic);
  auto resp = HandshakeState::New(rc);
  ASSERT_TRUE(init.ok() && resp.ok());
  std::optional<std::pair<CipherState, CipherState>> ti, tr;
  size_t i = 0;
  for (const auto& m : v.at("messages")) {
    Bytes payload = Hex(m, "payload"), want = Hex(m, "ciphertext");
    const bool from_init = i % 2 == 0;
    HandshakeState& sender = from_init ? **init : **resp;
    HandshakeState& receiver = from_init ? **resp : **init;
    if (!sender.IsComplete()) {
      auto c = sender.WriteMessage(payload);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      EXPECT_EQ(HexEncode(*c), HexEncode(want)) << "handshake message " << i;
      auto p = receiver.ReadMessage(want);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      EXPECT_EQ(*p, payload);
      if ((*init)->IsComplete()) {
        ti = std::move((*init)->Split()).value();
        tr = std::move((*resp)->Split()).value();
        EXPECT_EQ((*init)->handshake_hash(), (*resp)->handshake_hash());
        if (v.contains("handshake_hash")) {
          EXPECT_EQ(HexEncode((*init)->handshake_hash()),
                    v.at("handshake_hash").get<std::string>());
        }
      }
    } else {
      CipherState& send = from_init ? ti->first : tr->first;
      CipherState& recv = from_init ? tr->second : ti->second;
      auto c = send.EncryptWithAd({}, payload);
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(HexEncode(*c), HexEncode(want)) << "transport message " << i;
      auto p = recv.DecryptWithAd({}, want);
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(*p, payload);
    }
    ++i;
  }
  EXPECT_TRUE((*init)->IsComplete() && (*resp)->IsComplete());
}

std::vector<NoiseVector> Vectors() {
  auto v = LoadVectors();
  if (v.empty()) ADD_FAILURE() << "no Noise vectors found under " << QV_SHARED_VECTORS_DIR;
  return v;
}

INSTANTIATE_TEST_SUITE_P(PublicVectors, NoiseVectorTest, ::testing::ValuesIn(Vectors()),
                         [](const ::testing::TestParamInfo<NoiseVector>& info) {
                           std::string n = info.param.file.substr(0, info.param.file.find('-')) +
                                           "_" +
                                           info.param.v.at("protocol_name").get<std::string>();
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(NoiseTest, XxWithEd25519DerivedKeysRevealsPinnableStaticKeys) {
  auto a = SigningKey::Generate();
  auto b = SigningKey::Generate();
  SecretBytes as = (*a)->X25519Secret(), bs = (*b)->X25519Secret();
  Bytes prologue = {'q', 'v'};
  auto i = HandshakeState::New({Pattern::kXX, true, prologue, &as, {}, nullptr});
  auto r = HandshakeState::New({Pattern::kXX, false, prologue, &bs, {}, nullptr});
  ASSERT_TRUE(i.ok() && r.ok());
  for (int m = 0; m < 3; ++m) {
    HandshakeState& s = m % 2 == 0 ? **i : **r;
    HandshakeState& d = m % 2 == 0 ? **r : **i;
    auto c = s.WriteMessage({});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(d.ReadMessage(*c).ok());
  }
  EXPECT_EQ(*(*i)->remote_static(), *X25519PublicFromEd25519((*b)->public_key()));
  EXPECT_EQ(*(*r)->remote_static(), *X25519PublicFromEd25519((*a)->public_key()));
}

TEST(NoiseTest, TamperedOrReplayedHandshakeMessagesFail) {
  SecretBytes as = SecretBytes::Random(32), bs = SecretBytes::Random(32);
  Bytes prologue = {1};
  auto i = HandshakeState::New({Pattern::kXX, true, prologue, &as, {}, nullptr});
  auto r = HandshakeState::New({Pattern::kXX, false, prologue, &bs, {}, nullptr});
  auto m1 = (*i)->WriteMessage({});
  ASSERT_TRUE((*r)->ReadMessage(*m1).ok());
  auto m2 = (*r)->WriteMessage({});
  Bytes bad = *m2;
  bad[40] ^= 1;  // inside the encrypted static key
  EXPECT_EQ((*i)->ReadMessage(bad).status().code(), StatusCode::kUnauthenticated);
  // Out of turn.
  EXPECT_FALSE((*r)->WriteMessage({}).ok());
  // A different prologue never completes.
  auto i2 = HandshakeState::New({Pattern::kXX, true, Bytes{2}, &as, {}, nullptr});
  auto r2 = HandshakeState::New({Pattern::kXX, false, Bytes{1}, &bs, {}, nullptr});
  ASSERT_TRUE((*r2)->ReadMessage(*(*i2)->WriteMessage({})).ok());
  EXPECT_FALSE((*i2)->ReadMessage(*(*r2)->WriteMessage({})).ok());
}

TEST(NoiseTest, TransportRejectsReorderedAndTamperedMessages) {
  CipherState a, b;
  Bytes key(32, 7);
  ASSERT_TRUE(a.InitializeKey(key).ok());
  ASSERT_TRUE(b.InitializeKey(key).ok());
  auto c0 = a.EncryptWithAd({}, AsBytes("zero"));
  auto c1 = a.EncryptWithAd({}, AsBytes("one"));
  EXPECT_FALSE(b.DecryptWithAd({}, *c1).ok());  // skipped message 0
  CipherState b2;
  ASSERT_TRUE(b2.InitializeKey(key).ok());
  Bytes bad = *c0;
  bad[0] ^= 1;
  EXPECT_FALSE(b2.DecryptWithAd({}, bad).ok());
}

}  // namespace
}  // namespace qv::noise
