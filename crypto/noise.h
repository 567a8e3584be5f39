// The Noise Protocol Framework (revision 34) for Noise_{NN,XX,IK}_25519_
// ChaChaPoly_BLAKE2b: X25519 and BLAKE2b from libsodium, ChaCha20-Poly1305
// through OpenSSL (crypto/aead.h), the same fast path as the bulk data,
// since the transport carries every fragment byte.
//
// quorumvault uses XX: both sides send their static key encrypted and end the
// handshake knowing the other's; the caller then compares remote_static()
// with the pinned key before reading any request. NN and IK are here because
// the public test vectors cover them and they share every line of code.
//
// HandshakeState and CipherState are single-threaded objects owned by one
// session. Errors: kUnauthenticated for a message that fails decryption,
// kInvalidArgument for malformed or out-of-turn messages.
#ifndef QV_CRYPTO_NOISE_H_
#define QV_CRYPTO_NOISE_H_

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/secret.h"

namespace qv::noise {

inline constexpr size_t kDhLen = 32;
inline constexpr size_t kHashLen = 64;
inline constexpr size_t kMaxMessage = 65535;

using DhPublic = std::array<uint8_t, kDhLen>;

enum class Pattern { kNN, kXX, kIK };
Result<Pattern> ParseProtocolName(std::string_view name);  // "Noise_XX_25519_ChaChaPoly_BLAKE2b"

class CipherState {
 public:
  CipherState() = default;
  Status InitializeKey(ByteSpan key);
  bool HasKey() const { return !key_.empty(); }
  // Without a key these return the input unchanged (as the spec says).
  Result<Bytes> EncryptWithAd(ByteSpan ad, ByteSpan plaintext);
  Result<Bytes> DecryptWithAd(ByteSpan ad, ByteSpan ciphertext);
  // The same, in place: `buf` holds len plaintext bytes and room for the tag
  // after them (seal), or len + 16 ciphertext bytes (open, plaintext left at
  // the front). Require a key. For the transport's hot path.
  Status SealInPlace(ByteSpan ad, uint8_t* buf, size_t len);
  // Seals plaintext || trailer into `out` (which must not overlap them):
  // the transport's frames are encrypted straight from the message.
  Status SealTo(ByteSpan ad, ByteSpan plaintext, ByteSpan trailer, uint8_t* out);
  Status OpenTo(ByteSpan ad, ByteSpan ciphertext, uint8_t* out);
  uint64_t nonce() const { return n_; }

 private:
  void Nonce(uint8_t out[12]) const;
  SecretBytes key_;
  uint64_t n_ = 0;
  std::unique_ptr<AeadKey> seal_, open_;  // keyed lazily, per direction
};

struct HandshakeConfig {
  Pattern pattern = Pattern::kXX;
  bool initiator = false;
  Bytes prologue;
  const SecretBytes* static_secret = nullptr;    // X25519 secret, if the pattern uses s
  std::optional<DhPublic> remote_static;         // IK initiator: the responder's key
  const SecretBytes* fixed_ephemeral = nullptr;  // test vectors only
};

class HandshakeState {
 public:
  static Result<std::unique_ptr<HandshakeState>> New(const HandshakeConfig& config);
  ~HandshakeState();

  // The next message this side sends, carrying `payload`.
  Result<Bytes> WriteMessage(ByteSpan payload);
  // Processes the peer's next message; returns its payload.
  Result<Bytes> ReadMessage(ByteSpan message);

  bool IsComplete() const;
  bool IsMyTurn() const;
  // After completion: (send, receive) cipher states for this side.
  Result<std::pair<CipherState, CipherState>> Split();
  const std::optional<DhPublic>& remote_static() const { return rs_; }
  const std::array<uint8_t, kHashLen>& handshake_hash() const { return h_; }

 private:
  HandshakeState() = default;
  void MixHash(ByteSpan data);
  Status MixKey(ByteSpan ikm);
  Result<Bytes> EncryptAndHash(ByteSpan plaintext);
  Result<Bytes> DecryptAndHash(ByteSpan ciphertext);
  Status Dh(const SecretBytes& secret, const DhPublic& pub);
  Status DhToken(uint8_t token);

  Pattern pattern_ = Pattern::kXX;
  bool initiator_ = false;
  size_t message_ = 0;
  std::array<uint8_t, kHashLen> h_{}, ck_{};
  CipherState cs_;
  SecretBytes s_, e_;
  DhPublic s_pub_{}, e_pub_{};
  std::optional<DhPublic> rs_, re_;
};

}  // namespace qv::noise

#endif  // QV_CRYPTO_NOISE_H_
