#include "crypto/aead.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace qv {
namespace {

// The chunk format, checked against vectors computed by libsodium's
// independent implementations (tests/vectors/chunk_aead.json).
struct AeadVector {
  std::string cipher, key, stream_id, plaintext, ciphertext;
  uint64_t index;
  bool final;
};

std::vector<AeadVector> LoadVectors() {
  std::ifstream in(std::string(QV_VECTORS_DIR) + "/chunk_aead.json");
  nlohmann::json j = nlohmann::json::parse(in);
  std::vector<AeadVector> out;
  for (const auto& v : j.at("vectors")) {
    out.push_back({v.at("cipher"), v.at("key"), v.at("stream_id"), v.at("plaintext"),
                   v.at("ciphertext"), v.at("index"), v.at("final")});
  }
  return out;
}

class ChunkAeadVectorTest : public ::testing::TestWithParam<AeadVector> {};

TEST_P(ChunkAeadVectorTest, SealMatchesAndOpenInverts) {
  const AeadVector& v = GetParam();
  auto suite = ParseCipherSuite(v.cipher);
  ASSERT_TRUE(suite.ok());
  SecretBytes key = SecretBytes::CopyFrom(*HexDecode(v.key));
  Bytes sid = *HexDecode(v.stream_id), pt = *HexDecode(v.plaintext),
        want = *HexDecode(v.ciphertext);
  auto c = ChunkCipher::New(*suite, key, sid);
  ASSERT_TRUE(c.ok());
  Bytes ct(pt.size() + kAeadTagSize);
  ASSERT_TRUE((*c)->Seal(v.index, v.final, pt, ct.data()).ok());
  EXPECT_EQ(HexEncode(ct), v.ciphertext);
  Bytes back(pt.size());
  ASSERT_TRUE((*c)->Open(v.index, v.final, want, back.data()).ok());
  EXPECT_EQ(back, pt);
}

INSTANTIATE_TEST_SUITE_P(LibsodiumVectors, ChunkAeadVectorTest, ::testing::ValuesIn(LoadVectors()));

class ChunkCipherTest : public ::testing::TestWithParam<CipherSuite> {
 protected:
  void SetUp() override {
    key_ = SecretBytes::Random(kAeadKeySize);
    id_.assign(16, 0x11);
    cipher_ = std::move(ChunkCipher::New(GetParam(), key_, id_)).value();
  }
  // Seals a stream of chunks of `sizes`; the last is final.
  std::vector<Bytes> SealStream(const std::vector<size_t>& sizes) {
    std::vector<Bytes> out;
    for (size_t i = 0; i < sizes.size(); ++i) {
      Bytes pt(sizes[i], static_cast<uint8_t>(i + 1));
      Bytes ct(pt.size() + kAeadTagSize);
      EXPECT_TRUE(cipher_->Seal(i, i + 1 == sizes.size(), pt, ct.data()).ok());
      out.push_back(ct);
    }
    return out;
  }
  // Opens chunk at position i as if it were index i of a stream of n.
  Status OpenAt(const Bytes& ct, uint64_t i, uint64_t n, const ChunkCipher* c = nullptr) {
    Bytes pt(ct.size() - kAeadTagSize);
    return (c ? c : cipher_.get())->Open(i, i + 1 == n, ct, pt.data());
  }
  SecretBytes key_;
  Bytes id_;
  std::unique_ptr<ChunkCipher> cipher_;
};

TEST_P(ChunkCipherTest, RoundTripsBoundarySizes) {
  for (size_t size : {0, 1, 15, 16, 17, 4095, 4096, 65537, 1 << 20}) {
    Bytes pt(size);
    for (size_t i = 0; i < size; ++i) pt[i] = static_cast<uint8_t>(i * 31);
    Bytes ct(size + kAeadTagSize), back(size);
    ASSERT_TRUE(cipher_->Seal(3, true, pt, ct.data()).ok());
    ASSERT_TRUE(cipher_->Open(3, true, ct, back.data()).ok()) << size;
    EXPECT_EQ(back, pt) << size;
  }
}

TEST_P(ChunkCipherTest, DetectsAFlippedBitAnywhereAndZeroesOutput) {
  auto chunks = SealStream({100});
  for (size_t bit = 0; bit < chunks[0].size() * 8; bit += 37) {
    Bytes bad = chunks[0];
    bad[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    Bytes out(100, 0xee);
    Status s = cipher_->Open(0, true, bad, out.data());
    EXPECT_EQ(s.code(), StatusCode::kUnauthenticated) << bit;
    EXPECT_EQ(out, Bytes(100, 0)) << "unauthenticated plaintext leaked";
  }
}

TEST_P(ChunkCipherTest, DetectsReorderedChunks) {
  auto c = SealStream({10, 10, 10});
  EXPECT_TRUE(OpenAt(c[0], 0, 3).ok());
  EXPECT_FALSE(OpenAt(c[1], 0, 3).ok());
  EXPECT_FALSE(OpenAt(c[0], 1, 3).ok());
}

TEST_P(ChunkCipherTest, DetectsDroppedAndDuplicatedChunks) {
  auto c = SealStream({10, 10, 10});
  // Dropping chunk 1 puts chunk 2 at position 1.
  EXPECT_FALSE(OpenAt(c[2], 1, 2).ok());
  // Duplicating chunk 0 puts it at position 1.
  EXPECT_FALSE(OpenAt(c[0], 1, 4).ok());
}

TEST_P(ChunkCipherTest, DetectsTruncationByTheFinalFlag) {
  auto c = SealStream({10, 10, 10});
  // A stream cut after chunk 1 would need chunk 1 to be final; it is not.
  EXPECT_FALSE(OpenAt(c[1], 1, 2).ok());
  // And a final chunk is refused where the stream claims to go on.
  EXPECT_FALSE(OpenAt(c[2], 2, 4).ok());
  EXPECT_TRUE(OpenAt(c[2], 2, 3).ok());
}

TEST_P(ChunkCipherTest, DetectsWrongKeyAndWrongBackupId) {
  auto c = SealStream({10});
  auto other_key = ChunkCipher::New(GetParam(), SecretBytes::Random(32), id_);
  EXPECT_EQ(OpenAt(c[0], 0, 1, other_key->get()).code(), StatusCode::kUnauthenticated);
  Bytes other_id(16, 0x12);
  auto other_stream = ChunkCipher::New(GetParam(), key_, other_id);
  EXPECT_EQ(OpenAt(c[0], 0, 1, other_stream->get()).code(), StatusCode::kUnauthenticated);
  // The other suite under the same key does not open it either.
  CipherSuite other = GetParam() == CipherSuite::kAes256Gcm ? CipherSuite::kChaCha20Poly1305
                                                            : CipherSuite::kAes256Gcm;
  auto other_suite = ChunkCipher::New(other, key_, id_);
  EXPECT_FALSE(OpenAt(c[0], 0, 1, other_suite->get()).ok());
}

TEST_P(ChunkCipherTest, RefusesMalformedConstruction) {
  EXPECT_EQ(ChunkCipher::New(GetParam(), SecretBytes(16), id_).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkCipher::New(GetParam(), key_, Bytes(15)).status().code(),
            StatusCode::kInvalidArgument);
  Bytes out(1);
  EXPECT_EQ(cipher_->Open(0, true, Bytes(15), out.data()).code(), StatusCode::kCorruption);
  EXPECT_FALSE(ParseCipherSuite("rot13").ok());
}

TEST_P(ChunkCipherTest, SealingWithATrailerEqualsSealingTheConcatenation) {
  // The transport seals each frame's body and its flag byte as two parts
  // straight into the wire buffer; the result must be the one-part seal.
  const uint8_t nonce[12] = {7};
  const Bytes ad = {1, 2, 3};
  for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65518}}) {
    for (size_t t : {size_t{0}, size_t{1}, size_t{17}}) {
      auto k1 = AeadKey::New(GetParam(), key_.span(), true);
      auto k2 = AeadKey::New(GetParam(), key_.span(), true);
      ASSERT_TRUE(k1.ok() && k2.ok());
      Bytes whole(n + t);
      for (size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<uint8_t>(i * 7 + 1);
      Bytes one(n + t + kAeadTagSize), two(n + t + kAeadTagSize);
      ASSERT_TRUE((*k1)->Seal(nonce, ad, whole, one.data()).ok());
      ASSERT_TRUE(
          (*k2)
              ->Seal(nonce, ad, ByteSpan(whole).first(n), two.data(), ByteSpan(whole).subspan(n))
              .ok());
      EXPECT_EQ(one, two) << n << "+" << t;
    }
  }
}

TEST_P(ChunkCipherTest, OpeningPartsEqualsOpeningTheirConcatenation) {
  // A restore opens each chunk straight from the k units it was read into;
  // the cuts fall anywhere, the tag's 16 bytes included.
  for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{4096}}) {
    Bytes pt(size);
    for (size_t i = 0; i < size; ++i) pt[i] = static_cast<uint8_t>(i * 31 + 5);
    Bytes ct(size + kAeadTagSize);
    ASSERT_TRUE(cipher_->Seal(3, false, pt, ct.data()).ok());
    for (size_t a : {size_t{0}, size_t{1}, size / 2, size, size + 1, size + 15, ct.size()}) {
      for (size_t b : {a, (a + ct.size()) / 2, ct.size()}) {
        if (a > ct.size() || b < a || b > ct.size()) continue;
        const ByteSpan whole(ct);
        const ByteSpan parts[] = {whole.first(a), whole.subspan(a, b - a), whole.subspan(b)};
        Bytes out(size, 0xee);
        ASSERT_TRUE(cipher_->Open(3, false, parts, out.data()).ok())
            << size << " " << a << " " << b;
        EXPECT_EQ(out, pt);
        // A flipped bit in any part, the tag's included, is refused and the
        // output zeroed.
        for (size_t flip : {size_t{0}, a, b, ct.size() - 1}) {
          if (flip >= ct.size()) continue;
          Bytes bad = ct;
          bad[flip] ^= 0x01;
          const ByteSpan w(bad);
          const ByteSpan bparts[] = {w.first(a), w.subspan(a, b - a), w.subspan(b)};
          Bytes o(size, 0xee);
          EXPECT_EQ(cipher_->Open(3, false, bparts, o.data()).code(), StatusCode::kUnauthenticated);
          EXPECT_EQ(o, Bytes(size, 0));
        }
      }
    }
  }
  const Bytes fifteen(15);
  const ByteSpan short_parts[] = {ByteSpan(), ByteSpan(fifteen)};
  uint8_t sink[1];
  EXPECT_EQ(cipher_->Open(0, true, short_parts, sink).code(), StatusCode::kCorruption);
}

#if defined(__x86_64__)
// Bit 2 of XINUSE (XGETBV with ECX=1): the upper halves of the AVX registers
// hold non-zero state. Empty where the CPU cannot report it.
std::optional<bool> UpperVectorStateInUse() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return {};
  if (!__get_cpuid_count(0xd, 1, &a, &b, &c, &d) || !(a & (1u << 2))) return {};
  uint32_t lo = 0, hi = 0;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
  return (lo & (1u << 2)) != 0;
}

TEST_P(ChunkCipherTest, SealAndOpenLeaveTheUpperVectorStateClean) {
  // Left dirty, it slows every legacy-SSE instruction after it in the thread,
  // SHA-NI hashing included (by 15% on the machine this was found on).
  if (!UpperVectorStateInUse().has_value()) GTEST_SKIP() << "CPU cannot report XINUSE";
  for (size_t size : {size_t{1}, size_t{4096}, size_t{1} << 20}) {
    Bytes pt(size, 0x42), ct(size + kAeadTagSize), back(size);
    ASSERT_TRUE(cipher_->Seal(0, true, pt, ct.data()).ok());
    EXPECT_FALSE(*UpperVectorStateInUse()) << "after sealing " << size << " bytes";
    ASSERT_TRUE(cipher_->Open(0, true, ct, back.data()).ok());
    EXPECT_FALSE(*UpperVectorStateInUse()) << "after opening " << size << " bytes";
    ct[0] ^= 1;
    ASSERT_FALSE(cipher_->Open(0, true, ct, back.data()).ok());
    EXPECT_FALSE(*UpperVectorStateInUse()) << "after refusing " << size << " bytes";
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Suites, ChunkCipherTest,
                         ::testing::Values(CipherSuite::kChaCha20Poly1305, CipherSuite::kAes256Gcm),
                         [](const auto& info) {
                           return info.param == CipherSuite::kAes256Gcm ? "Aes256Gcm"
                                                                        : "ChaCha20Poly1305";
                         });

}  // namespace
}  // namespace qv
