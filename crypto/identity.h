// Ed25519 identities (libsodium) and their key files.
//
// A secret key file holds the 32-byte seed as hex, mode 0600; loading refuses
// a file that group or others can read, and reads it straight into secure
// memory. SigningKey is immutable and thread-safe. Public keys print as
// "ed25519:<64 hex>".
#ifndef QV_CRYPTO_IDENTITY_H_
#define QV_CRYPTO_IDENTITY_H_

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace qv {

inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSignatureSize = 64;

using PublicKey = std::array<uint8_t, kPublicKeySize>;
using Signature = std::array<uint8_t, kSignatureSize>;

std::string PublicKeyToText(const PublicKey& pk);
Result<PublicKey> PublicKeyFromText(std::string_view text);

// Something that signs as one Ed25519 identity: a key in memory
// (SigningKey) or one in a hardware token (crypto/pkcs11.h). Signing may
// fail (a token removed); a signature returned always verifies under
// public_key(). Implementations are thread-safe.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual const PublicKey& public_key() const = 0;
  virtual Result<Signature> SignMessage(ByteSpan message) const = 0;
};

class SigningKey final : public Signer {
 public:
  static Result<std::unique_ptr<SigningKey>> Generate();
  static Result<std::unique_ptr<SigningKey>> FromSeed(const SecretBytes& seed);
  // Refuses files readable by group or others (kPermissionDenied).
  static Result<std::unique_ptr<SigningKey>> Load(const std::filesystem::path& path);

  // Writes a new key file with mode 0600; never overwrites (kAlreadyExists).
  Status Save(const std::filesystem::path& path) const;

  const PublicKey& public_key() const override { return public_key_; }
  Signature Sign(ByteSpan message) const;
  Result<Signature> SignMessage(ByteSpan message) const override { return Sign(message); }
  // The X25519 secret derived from this identity (the Noise static key), so
  // one pinned Ed25519 key names a peer for both signatures and channels.
  SecretBytes X25519Secret() const;

 private:
  SigningKey(SecretBytes secret, const PublicKey& pk)
      : secret_(std::move(secret)), public_key_(pk) {}
  const SecretBytes secret_;  // libsodium's 64-byte secret key (seed || pk)
  const PublicKey public_key_;
};

// The X25519 public key that matches SigningKey::X25519Secret() of `pk`.
Result<std::array<uint8_t, 32>> X25519PublicFromEd25519(const PublicKey& pk);

// kUnauthenticated if the signature does not verify.
Status VerifySignature(const PublicKey& pk, ByteSpan message, const Signature& sig);

// Domain separation for signed records: context || 0x00 || body, so a
// signature made for one kind of record never verifies as another.
Bytes ContextMessage(std::string_view context, ByteSpan body);

}  // namespace qv

#endif  // QV_CRYPTO_IDENTITY_H_
