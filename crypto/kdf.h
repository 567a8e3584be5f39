// Key derivation with BLAKE2b (libsodium crypto_generichash).
#ifndef QV_CRYPTO_KDF_H_
#define QV_CRYPTO_KDF_H_

#include <array>
#include <string_view>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace qv {

// BLAKE2b-256 keyed with `ikm` (16..64 bytes) over label || 0x00 || context.
// Distinct labels give independent keys from the same ikm.
SecretBytes DeriveKey(const SecretBytes& ikm, std::string_view label, ByteSpan context);

// Unkeyed BLAKE2b-256 over domain || 0x00 || data: record ids and the audit
// chain. Distinct domains never collide with each other's inputs.
std::array<uint8_t, 32> DomainHash(std::string_view domain, ByteSpan data);

// The per-backup data key from the shared secret scalar, bound to the backup id.
inline constexpr std::string_view kDataKeyLabel = "quorumvault/v1/data-key";

}  // namespace qv

#endif  // QV_CRYPTO_KDF_H_
