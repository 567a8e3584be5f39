// The process's one source of randomness is libsodium's randombytes (keys,
// nonces, backup ids, request nonces; OpenSSL draws none here). By default
// it reads the OS (getrandom). The simulator (sim/) replaces it with a
// seeded stream so that a run, keys and ids included, is reproducible.
// Never seeded outside sim/ and its tests: no flag, file or environment
// variable of the CLI or the daemon reaches UseSeededRandom.
#ifndef QV_CRYPTO_RANDOM_H_
#define QV_CRYPTO_RANDOM_H_

#include <cstdint>

namespace qv {

// From now on, every randombytes draw in the process comes from a stream
// determined by `seed` alone (libsodium's randombytes_buf_deterministic:
// ChaCha20 keyed by BLAKE2b(seed, call counter)). Thread-safe.
void UseSeededRandom(uint64_t seed);
// Back to the operating system's generator.
void UseSystemRandom();

}  // namespace qv

#endif  // QV_CRYPTO_RANDOM_H_
