#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <limits>

namespace qv {

namespace {

constexpr char kAdLabel[] = "qv-chunk-v1";
constexpr size_t kAdLabelSize = sizeof(kAdLabel) - 1;
constexpr size_t kAdSize = kAdLabelSize + kStreamIdSize + 8 + 1;

const EVP_CIPHER* Cipher(CipherSuite suite) {
  // Fetched once per suite; see sha256.cc on implicit fetch costs.
  static EVP_CIPHER* chacha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  static EVP_CIPHER* gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return suite == CipherSuite::kChaCha20Poly1305 ? chacha : gcm;
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

std::string_view CipherSuiteName(CipherSuite suite) {
  switch (suite) {
    case CipherSuite::kChaCha20Poly1305:
      return "chacha20-poly1305";
    case CipherSuite::kAes256Gcm:
      return "aes-256-gcm";
  }
  return "unknown";
}

Result<CipherSuite> ParseCipherSuite(std::string_view name) {
  if (name == "chacha20-poly1305") return CipherSuite::kChaCha20Poly1305;
  if (name == "aes-256-gcm") return CipherSuite::kAes256Gcm;
  return InvalidArgument("unknown cipher '" + std::string(name) +
                         "' (choose chacha20-poly1305 or aes-256-gcm)");
}

ChunkCipher::ChunkCipher(CipherSuite suite, SecretBytes key, ByteSpan stream_id)
    : suite_(suite), key_(std::move(key)) {
  std::memcpy(stream_id_.data(), stream_id.data(), kStreamIdSize);
}

Result<std::unique_ptr<ChunkCipher>> ChunkCipher::New(CipherSuite suite, const SecretBytes& key,
                                                      ByteSpan stream_id) {
  if (suite != CipherSuite::kChaCha20Poly1305 && suite != CipherSuite::kAes256Gcm) {
    return InvalidArgument("unknown cipher suite " + std::to_string(static_cast<int>(suite)));
  }
  if (key.size() != kAeadKeySize) return InvalidArgument("AEAD key must be 32 bytes");
  if (stream_id.size() != kStreamIdSize) return InvalidArgument("stream id must be 16 bytes");
  if (Cipher(suite) == nullptr) {
    return Internal("OpenSSL does not provide " + std::string(CipherSuiteName(suite)));
  }
  return std::unique_ptr<ChunkCipher>(new ChunkCipher(suite, key.Clone(), stream_id));
}

Status ChunkCipher::Seal(uint64_t index, bool final, ByteSpan plaintext, uint8_t* out) const {
  return Run(true, index, final, plaintext, out);
}

Status ChunkCipher::Open(uint64_t index, bool final, ByteSpan ciphertext, uint8_t* out) const {
  if (ciphertext.size() < kAeadTagSize) {
    return Corruption("chunk " + std::to_string(index) + ": shorter than its tag");
  }
  Status s = Run(false, index, final, ciphertext, out);
  if (!s.ok()) OPENSSL_cleanse(out, ciphertext.size() - kAeadTagSize);
  return s;
}

Status ChunkCipher::Run(bool encrypt, uint64_t index, bool final, ByteSpan in, uint8_t* out) const {
  const size_t body = encrypt ? in.size() : in.size() - kAeadTagSize;
  if (body > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgument("chunk larger than 2 GiB");
  }
  uint8_t nonce[12] = {0};
  PutU64BE(nonce + 4, index);
  uint8_t ad[kAdSize];
  std::memcpy(ad, kAdLabel, kAdLabelSize);
  std::memcpy(ad + kAdLabelSize, stream_id_.data(), kStreamIdSize);
  PutU64BE(ad + kAdLabelSize + kStreamIdSize, index);
  ad[kAdSize - 1] = final ? 1 : 0;

  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Internal("EVP_CIPHER_CTX_new failed");
  const int enc = encrypt ? 1 : 0;
  // Both suites default to a 12-byte IV, so key and IV go in one call.
  if (EVP_CipherInit_ex2(ctx.get(), Cipher(suite_), key_.data(), nonce, enc, nullptr) != 1) {
    return Internal("AEAD init failed");
  }
  int len = 0;
  if (EVP_CipherUpdate(ctx.get(), nullptr, &len, ad, static_cast<int>(kAdSize)) != 1) {
    return Internal("AEAD associated data failed");
  }
  if (body > 0 && EVP_CipherUpdate(ctx.get(), out, &len, in.data(), static_cast<int>(body)) != 1) {
    return Internal("AEAD update failed");
  }
  if (!encrypt) {
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kAeadTagSize,
                            const_cast<uint8_t*>(in.data() + body)) != 1) {
      return Internal("AEAD set tag failed");
    }
  }
  int fin = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out + body, &fin) != 1) {
    if (!encrypt) {
      return Unauthenticated("chunk " + std::to_string(index) +
                             " failed authentication (tampered, misplaced, truncated "
                             "stream or wrong key)");
    }
    return Internal("AEAD final failed");
  }
  if (encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kAeadTagSize, out + body) != 1) {
    return Internal("AEAD get tag failed");
  }
  return Status::Ok();
}

}  // namespace qv
