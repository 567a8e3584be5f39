// Chunked authenticated encryption of a stream under one data key.
//
// Chunk i is sealed with nonce = 0x00000000 || be64(i) and associated data
// "qv-chunk-v1" || stream_id || be64(i) || final-flag, so a chunk moved to
// another position, dropped, duplicated, or a stream cut short (no chunk
// flagged final) fails authentication. The key must be fresh per stream:
// nonces are counters and never repeat under one key only because of that.
//
// Bulk primitives come from OpenSSL (EVP): ChaCha20-Poly1305 by default,
// AES-256-GCM for sites that need FIPS-approved algorithms. ChunkCipher is
// immutable after New(); Seal/Open are const and safe to call from several
// threads at once (each call uses its own EVP context).
#ifndef QV_CRYPTO_AEAD_H_
#define QV_CRYPTO_AEAD_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace qv {

enum class CipherSuite : uint8_t {
  kChaCha20Poly1305 = 1,
  kAes256Gcm = 2,
};

std::string_view CipherSuiteName(CipherSuite suite);  // "chacha20-poly1305"
Result<CipherSuite> ParseCipherSuite(std::string_view name);

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kStreamIdSize = 16;

// One AEAD key with a caller-chosen 12-byte nonce per call, for protocols
// that define their own nonces (the Noise transport). Holds one EVP context
// keyed once, so a call costs no key setup. Not thread-safe: one per
// direction of a channel. Open zeroes `out` on failure.
class AeadKey {
 public:
  static Result<std::unique_ptr<AeadKey>> New(CipherSuite suite, ByteSpan key, bool encrypt);
  ~AeadKey();
  AeadKey(const AeadKey&) = delete;
  AeadKey& operator=(const AeadKey&) = delete;

  // Seals plaintext || trailer. out: plaintext.size() + trailer.size() +
  // kAeadTagSize bytes; it may be the plaintext itself (in place) or not
  // overlap it at all.
  Status Seal(const uint8_t nonce[12], ByteSpan ad, ByteSpan plaintext, uint8_t* out,
              ByteSpan trailer = {});
  // out: ciphertext.size() - kAeadTagSize bytes.
  Status Open(const uint8_t nonce[12], ByteSpan ad, ByteSpan ciphertext, uint8_t* out);

 private:
  AeadKey(void* ctx, bool encrypt) : ctx_(ctx), encrypt_(encrypt) {}
  void* ctx_;  // EVP_CIPHER_CTX
  const bool encrypt_;
};

class ChunkCipher {
 public:
  // key: 32 bytes; stream_id: 16 bytes (the backup id).
  static Result<std::unique_ptr<ChunkCipher>> New(CipherSuite suite, const SecretBytes& key,
                                                  ByteSpan stream_id);

  // Writes plaintext.size() + kAeadTagSize bytes to `out` (ciphertext || tag).
  Status Seal(uint64_t index, bool final, ByteSpan plaintext, uint8_t* out) const;
  // Writes ciphertext.size() - kAeadTagSize bytes to `out`. On failure `out`
  // is zeroed, so unauthenticated plaintext never escapes.
  Status Open(uint64_t index, bool final, ByteSpan ciphertext, uint8_t* out) const;
  // The same for a ciphertext that is the concatenation of `parts` (units
  // held in separate buffers), opened without copying them together.
  Status Open(uint64_t index, bool final, std::span<const ByteSpan> parts, uint8_t* out) const;

  CipherSuite suite() const { return suite_; }

 private:
  ChunkCipher(CipherSuite suite, SecretBytes key, ByteSpan stream_id);
  Status Run(bool encrypt, uint64_t index, bool final, std::span<const ByteSpan> in,
             uint8_t* out) const;

  const CipherSuite suite_;
  const SecretBytes key_;
  std::array<uint8_t, kStreamIdSize> stream_id_;
};

}  // namespace qv

#endif  // QV_CRYPTO_AEAD_H_
