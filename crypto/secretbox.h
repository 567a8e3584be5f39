// Sealing small secrets at rest: XSalsa20-Poly1305 (crypto_secretbox) under
// a 32-byte master key, random nonce prepended. For shares and key material
// only; the bulk data path is crypto/aead.h.
#ifndef QV_CRYPTO_SECRETBOX_H_
#define QV_CRYPTO_SECRETBOX_H_

#include <array>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace qv {

inline constexpr size_t kSecretBoxKeySize = 32;

// `context` is bound into the key, so a box sealed for one purpose or object
// cannot be opened as another.
Result<Bytes> SealSecret(const SecretBytes& master_key, std::string_view context,
                         const SecretBytes& plaintext);
Result<SecretBytes> OpenSecret(const SecretBytes& master_key, std::string_view context,
                               ByteSpan sealed);

// Sealing to a one-time recipient key (crypto_box_seal: X25519 + XSalsa20-
// Poly1305, anonymous sender): how a node releases a share to a requester.
// Only the holder of the recipient's secret half can open it.
inline constexpr size_t kBoxPublicKeySize = 32;
inline constexpr size_t kBoxSealOverhead = 48;

struct BoxKeyPair {
  std::array<uint8_t, kBoxPublicKeySize> public_key;
  SecretBytes secret_key;  // 32 bytes, secure memory
};
BoxKeyPair NewBoxKeyPair();
// True when secret_key is the secret half of public_key.
bool BoxKeyMatches(const BoxKeyPair& kp);
Result<Bytes> SealToKey(const std::array<uint8_t, kBoxPublicKeySize>& recipient,
                        const SecretBytes& plaintext);
// Fails (kPermissionDenied) when the box was not sealed to this key pair or
// was altered.
Result<SecretBytes> OpenSealed(const BoxKeyPair& recipient, ByteSpan sealed);

// Proof of possession of a one-time key, for one peer and one purpose: the
// holder of `reply` and the holder of the peer's X25519 static key derive
// the same crypto_kx session key (X25519, then BLAKE2b-512 over the shared
// point and both public keys) and the proof is BLAKE2b-256 keyed with it
// over `context`. Only those two can compute it, and it names the peer, so
// a proof given to one node is worthless at another. Compared in constant
// time by VerifyPossession.
inline constexpr size_t kPossessionProofSize = 32;
using PossessionProof = std::array<uint8_t, kPossessionProofSize>;
Result<PossessionProof> ProvePossession(const BoxKeyPair& reply,
                                        const std::array<uint8_t, 32>& peer_public,
                                        ByteSpan context);
Status VerifyPossession(const SecretBytes& peer_secret, const std::array<uint8_t, 32>& peer_public,
                        const std::array<uint8_t, kBoxPublicKeySize>& reply_public,
                        ByteSpan context, ByteSpan proof);

}  // namespace qv

#endif  // QV_CRYPTO_SECRETBOX_H_
