#include "crypto/random.h"

#include <sodium.h>

#include <array>
#include <mutex>

namespace qv {

namespace {

std::mutex g_mu;
std::array<uint8_t, 32> g_key{};  // guarded by g_mu
uint64_t g_counter = 0;           // guarded by g_mu

const char* SeededName() { return "qv-seeded"; }

void SeededBuf(void* const buf, const size_t size) {
  std::array<uint8_t, randombytes_SEEDBYTES> seed{};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    uint8_t counter[8];
    for (int i = 0; i < 8; ++i) counter[i] = static_cast<uint8_t>(g_counter >> (8 * i));
    ++g_counter;
    crypto_generichash(seed.data(), seed.size(), counter, sizeof counter, g_key.data(),
                       g_key.size());
  }
  randombytes_buf_deterministic(buf, size, seed.data());
  sodium_memzero(seed.data(), seed.size());
}

uint32_t SeededRandom() {
  uint32_t v = 0;
  SeededBuf(&v, sizeof v);
  return v;
}

// uniform is left null: libsodium then draws rejection-sampled values
// through random() (randombytes.c).
randombytes_implementation g_seeded = {SeededName, SeededRandom, nullptr,
                                       nullptr,    SeededBuf,    nullptr};

}  // namespace

void UseSeededRandom(uint64_t seed) {
  if (sodium_init() < 0) return;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    uint8_t s[8];
    for (int i = 0; i < 8; ++i) s[i] = static_cast<uint8_t>(seed >> (8 * i));
    static constexpr char kDomain[] = "quorumvault/sim-random/v1";
    crypto_generichash(g_key.data(), g_key.size(), s, sizeof s,
                       reinterpret_cast<const uint8_t*>(kDomain), sizeof kDomain - 1);
    g_counter = 0;
  }
  randombytes_set_implementation(&g_seeded);
}

void UseSystemRandom() { randombytes_set_implementation(&randombytes_sysrandom_implementation); }

}  // namespace qv
