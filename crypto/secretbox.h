// Sealing small secrets at rest: XSalsa20-Poly1305 (crypto_secretbox) under
// a 32-byte master key, random nonce prepended. For shares and key material
// only; the bulk data path is crypto/aead.h.
#ifndef QV_CRYPTO_SECRETBOX_H_
#define QV_CRYPTO_SECRETBOX_H_

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

}  // namespace qv

#endif  // QV_CRYPTO_SECRETBOX_H_
