#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#if defined(__x86_64__)
__attribute__((target("avx"))) void ZeroUpperAvx() { _mm256_zeroupper(); }
#endif

// OpenSSL's AVX-512 ChaCha20-Poly1305 returns with the upper halves of the
// vector registers still dirty. Until they are cleared, every legacy-SSE
// instruction this thread runs pays for merging them, and OpenSSL's SHA-NI
// SHA-256 is legacy SSE: measured here, it hashes 15% slower after an AEAD
// call than before one. Every AEAD operation ends by clearing them.
class CleanVectorStateOnExit {
 public:
  ~CleanVectorStateOnExit() {
#if defined(__x86_64__)
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx) ZeroUpperAvx();
#endif
  }
};

// Runs one AEAD operation on a context that already holds the key. The
// input is the concatenation of `parts` (plaintext to seal, or ciphertext ||
// tag to open), so callers can add a byte of framing, or open units that lie
// in separate buffers, without first copying them together. The tag may
// straddle parts.
Status RunKeyed(EVP_CIPHER_CTX* ctx, bool encrypt, const uint8_t* nonce, ByteSpan ad,
                std::span<const ByteSpan> parts, uint8_t* out, const char* what) {
  CleanVectorStateOnExit clean;
  size_t total = 0;
  for (ByteSpan p : parts) total += p.size();
  if (!encrypt && total < kAeadTagSize)
    return Corruption(std::string(what) + " shorter than its tag");
  const size_t body = encrypt ? total : total - kAeadTagSize;
  if (body > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      ad.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgument("AEAD input larger than 2 GiB");
  }
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce, encrypt ? 1 : 0, nullptr) != 1) {
    return Internal("AEAD nonce setup failed");
  }
  int len = 0;
  if (!ad.empty() &&
      EVP_CipherUpdate(ctx, nullptr, &len, ad.data(), static_cast<int>(ad.size())) != 1) {
    return Internal("AEAD associated data failed");
  }
  uint8_t tag[kAeadTagSize];
  size_t done = 0;  // bytes of the input consumed
  for (ByteSpan p : parts) {
    const size_t n = done < body ? std::min(p.size(), body - done) : 0;
    if (n > 0 && EVP_CipherUpdate(ctx, out + done, &len, p.data(), static_cast<int>(n)) != 1) {
      return Internal("AEAD update failed");
    }
    if (!encrypt && n < p.size()) std::memcpy(tag + (done + n - body), p.data() + n, p.size() - n);
    done += p.size();
  }
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kAeadTagSize, tag) != 1) {
    return Internal("AEAD set tag failed");
  }
  int fin = 0;
  if (EVP_CipherFinal_ex(ctx, out + body, &fin) != 1) {
    if (!encrypt) return Unauthenticated(std::string(what) + " failed authentication");
    return Internal("AEAD final failed");
  }
  if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kAeadTagSize, out + body) != 1) {
    return Internal("AEAD get tag failed");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<AeadKey>> AeadKey::New(CipherSuite suite, ByteSpan key, bool encrypt) {
  if (key.size() != kAeadKeySize) return InvalidArgument("AEAD key must be 32 bytes");
  const EVP_CIPHER* cipher = Cipher(suite);
  if (cipher == nullptr) return Internal("OpenSSL does not provide this cipher");
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return Internal("EVP_CIPHER_CTX_new failed");
  if (EVP_CipherInit_ex2(ctx, cipher, key.data(), nullptr, encrypt ? 1 : 0, nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return Internal("AEAD key setup failed");
  }
  return std::unique_ptr<AeadKey>(new AeadKey(ctx, encrypt));
}

AeadKey::~AeadKey() { EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_)); }

Status AeadKey::Seal(const uint8_t nonce[12], ByteSpan ad, ByteSpan plaintext, uint8_t* out,
                     ByteSpan trailer) {
  if (!encrypt_) return Internal("AeadKey for opening used to seal");
  const ByteSpan parts[] = {plaintext, trailer};
  return RunKeyed(static_cast<EVP_CIPHER_CTX*>(ctx_), true, nonce, ad, parts, out, "message");
}

Status AeadKey::Open(const uint8_t nonce[12], ByteSpan ad, ByteSpan ciphertext, uint8_t* out) {
  if (encrypt_) return Internal("AeadKey for sealing used to open");
  if (ciphertext.size() < kAeadTagSize) return Corruption("message shorter than its tag");
  const ByteSpan parts[] = {ciphertext};
  Status s = RunKeyed(static_cast<EVP_CIPHER_CTX*>(ctx_), false, nonce, ad, parts, out, "message");
  if (!s.ok()) OPENSSL_cleanse(out, ciphertext.size() - kAeadTagSize);
  return s;
}

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
  const ByteSpan parts[] = {plaintext};
  return Run(true, index, final, parts, out);
}

Status ChunkCipher::Open(uint64_t index, bool final, ByteSpan ciphertext, uint8_t* out) const {
  const ByteSpan parts[] = {ciphertext};
  return Open(index, final, parts, out);
}

Status ChunkCipher::Open(uint64_t index, bool final, std::span<const ByteSpan> parts,
                         uint8_t* out) const {
  size_t total = 0;
  for (ByteSpan p : parts) total += p.size();
  if (total < kAeadTagSize) {
    return Corruption("chunk " + std::to_string(index) + ": shorter than its tag");
  }
  Status s = Run(false, index, final, parts, out);
  if (!s.ok()) OPENSSL_cleanse(out, total - kAeadTagSize);
  return s;
}

Status ChunkCipher::Run(bool encrypt, uint64_t index, bool final, std::span<const ByteSpan> in,
                        uint8_t* out) const {
  uint8_t nonce[12] = {0};
  PutU64BE(nonce + 4, index);
  uint8_t ad[kAdSize];
  std::memcpy(ad, kAdLabel, kAdLabelSize);
  std::memcpy(ad + kAdLabelSize, stream_id_.data(), kStreamIdSize);
  PutU64BE(ad + kAdLabelSize + kStreamIdSize, index);
  ad[kAdSize - 1] = final ? 1 : 0;

  // A context per call keeps Seal/Open const and thread-safe; key setup is
  // negligible next to a chunk of megabytes.
  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Internal("EVP_CIPHER_CTX_new failed");
  if (EVP_CipherInit_ex2(ctx.get(), Cipher(suite_), key_.data(), nullptr, encrypt ? 1 : 0,
                         nullptr) != 1) {
    return Internal("AEAD init failed");
  }
  Status s = RunKeyed(ctx.get(), encrypt, nonce, ByteSpan(ad, kAdSize), in, out, "chunk");
  if (s.code() == StatusCode::kUnauthenticated) {
    return Unauthenticated("chunk " + std::to_string(index) +
                           " failed authentication (tampered, misplaced, truncated stream or "
                           "wrong key)");
  }
  return s;
}

}  // namespace qv
