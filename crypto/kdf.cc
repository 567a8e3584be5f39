#include "crypto/kdf.h"

#include <sodium.h>

#include <cstdlib>

namespace qv {

SecretBytes DeriveKey(const SecretBytes& ikm, std::string_view label, ByteSpan context) {
  EnsureSodium();
  SecretBytes out(32);
  crypto_generichash_state st;
  if (crypto_generichash_init(&st, ikm.data(), ikm.size(), out.size()) != 0) std::abort();
  const uint8_t sep = 0;
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  crypto_generichash_update(&st, &sep, 1);
  crypto_generichash_update(&st, context.data(), context.size());
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof st);
  return out;
}

std::array<uint8_t, 32> DomainHash(std::string_view domain, ByteSpan data) {
  EnsureSodium();
  std::array<uint8_t, 32> out;
  crypto_generichash_state st;
  if (crypto_generichash_init(&st, nullptr, 0, out.size()) != 0) std::abort();
  const uint8_t sep = 0;
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(domain.data()), domain.size());
  crypto_generichash_update(&st, &sep, 1);
  crypto_generichash_update(&st, data.data(), data.size());
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

}  // namespace qv
