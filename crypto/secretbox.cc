#include "crypto/secretbox.h"

#include <sodium.h>

#include "crypto/kdf.h"

namespace qv {

namespace {
constexpr std::string_view kLabel = "quorumvault/v1/sealed-at-rest";
}

Result<Bytes> SealSecret(const SecretBytes& master_key, std::string_view context,
                         const SecretBytes& plaintext) {
  if (master_key.size() != kSecretBoxKeySize) return InvalidArgument("master key must be 32 bytes");
  SecretBytes key = DeriveKey(master_key, kLabel, AsBytes(context));
  Bytes out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size());
  randombytes_buf(out.data(), crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(out.data() + crypto_secretbox_NONCEBYTES, plaintext.data(),
                        plaintext.size(), out.data(), key.data());
  return out;
}

Result<SecretBytes> OpenSecret(const SecretBytes& master_key, std::string_view context,
                               ByteSpan sealed) {
  if (master_key.size() != kSecretBoxKeySize) return InvalidArgument("master key must be 32 bytes");
  if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return Corruption("sealed secret is truncated");
  }
  SecretBytes key = DeriveKey(master_key, kLabel, AsBytes(context));
  SecretBytes out(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES);
  if (crypto_secretbox_open_easy(out.data(), sealed.data() + crypto_secretbox_NONCEBYTES,
                                 sealed.size() - crypto_secretbox_NONCEBYTES, sealed.data(),
                                 key.data()) != 0) {
    return Unauthenticated(
        "sealed secret failed authentication (wrong key, wrong object, or "
        "tampered)");
  }
  return out;
}

BoxKeyPair NewBoxKeyPair() {
  EnsureSodium();
  BoxKeyPair kp{{}, SecretBytes(crypto_box_SECRETKEYBYTES)};
  crypto_box_keypair(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

bool BoxKeyMatches(const BoxKeyPair& kp) {
  EnsureSodium();
  if (kp.secret_key.size() != crypto_box_SECRETKEYBYTES) return false;
  std::array<uint8_t, kBoxPublicKeySize> pk;
  if (crypto_scalarmult_base(pk.data(), kp.secret_key.data()) != 0) return false;
  return sodium_memcmp(pk.data(), kp.public_key.data(), pk.size()) == 0;
}

Result<Bytes> SealToKey(const std::array<uint8_t, kBoxPublicKeySize>& recipient,
                        const SecretBytes& plaintext) {
  EnsureSodium();
  Bytes out(plaintext.size() + crypto_box_SEALBYTES);
  if (crypto_box_seal(out.data(), plaintext.data(), plaintext.size(), recipient.data()) != 0) {
    return InvalidArgument("cannot seal to that public key");
  }
  return out;
}

Result<SecretBytes> OpenSealed(const BoxKeyPair& recipient, ByteSpan sealed) {
  EnsureSodium();
  if (sealed.size() < crypto_box_SEALBYTES || recipient.secret_key.size() != 32) {
    return InvalidArgument("sealed box too short");
  }
  SecretBytes out(sealed.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(out.data(), sealed.data(), sealed.size(), recipient.public_key.data(),
                           recipient.secret_key.data()) != 0) {
    return Status(StatusCode::kPermissionDenied,
                  "sealed box does not open with this key (wrong recipient or altered)");
  }
  return out;
}

}  // namespace qv
