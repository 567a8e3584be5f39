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

}  // namespace qv
