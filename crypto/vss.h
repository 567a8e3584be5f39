// Verifiable threshold sharing (Shamir over the ristretto255 scalar field,
// Feldman commitments), on libsodium's crypto_core_ristretto255_* calls.
//
// A dealing of threshold t among n holders draws f(z) = a_0 + a_1 z + ... +
// a_{t-1} z^{t-1}, gives holder x (1..n) the share f(x) and publishes
// C_j = g^{a_j}. Anyone holding the commitments can check a share:
// g^{f(x)} == prod_j C_j^{x^j}. Combine() checks every share first, names the
// bad ones, uses only good ones, and confirms g^{secret} == C_0, so it never
// returns a wrong secret silently.
//
// All functions are thread-safe. Secrets and share values live in SecretBytes.
#ifndef QV_CRYPTO_VSS_H_
#define QV_CRYPTO_VSS_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace qv {

inline constexpr size_t kScalarSize = 32;
inline constexpr size_t kPointSize = 32;
inline constexpr uint32_t kMaxShareHolders = 255;

using Point = std::array<uint8_t, kPointSize>;  // ristretto255 encoding; identity = zeros

struct Share {
  uint32_t x = 0;  // holder index, 1..n
  SecretBytes y;   // f(x), 32-byte little-endian scalar

  Share Clone() const { return Share{x, y.Clone()}; }
};

// The wire and at-rest form of a share: be32(x) || y, 36 bytes, in secure memory.
inline constexpr size_t kEncodedShareSize = 4 + kScalarSize;
SecretBytes EncodeShare(const Share& share);
Result<Share> DecodeShare(std::span<const uint8_t> encoded);

struct Dealing {
  SecretBytes secret;  // a_0
  std::vector<Share> shares;
  std::vector<Point> commitments;  // t points, C_0 first
};

// Random secret. Requires 1 <= t <= n <= kMaxShareHolders.
Result<Dealing> Deal(uint32_t t, uint32_t n);
// Given secret (32-byte canonical scalar; zero allowed, as refresh needs).
Result<Dealing> DealSecret(const SecretBytes& secret, uint32_t t, uint32_t n);

// kUnauthenticated naming the share if it does not match the commitments;
// kInvalidArgument for malformed input (x == 0, non-canonical value, bad point).
Status VerifyShare(const Share& share, std::span<const Point> commitments);

// Proof that a holder knows the value of share x without showing it: a
// Schnorr proof of knowledge (Schnorr, "Efficient signature generation by
// smart cards", J. Cryptology 1991; non-interactive by Fiat-Shamir, layout
// as RFC 8235) of y with g^y equal to the public value the commitments give
// for x. The verifier's fresh `context` (a scrub nonce) is in the
// challenge, so an old proof cannot be replayed, and the public value
// alone (which anyone computes from the commitments) cannot make one.
struct ShareProof {
  Point r{};                             // g^k
  std::array<uint8_t, kScalarSize> s{};  // k + c*y
};
inline constexpr size_t kShareProofSize = kPointSize + kScalarSize;
Result<ShareProof> ProveShare(const Share& share, ByteSpan context);
// kUnauthenticated naming x when the proof fails; kInvalidArgument for
// malformed input.
Status VerifyShareProof(uint32_t x, const ShareProof& proof, ByteSpan context,
                        std::span<const Point> commitments);
Bytes EncodeShareProof(const ShareProof& proof);
Result<ShareProof> DecodeShareProof(ByteSpan encoded);

struct Recovered {
  SecretBytes secret;
  std::vector<uint32_t> rejected;  // x of shares that failed verification
};

// Verifies every share, uses the first t good ones. Errors: duplicate or
// zero x (kInvalidArgument), fewer than t good shares (kFailedPrecondition,
// naming the bad ones).
Result<Recovered> Combine(std::span<const Share> shares, std::span<const Point> commitments);

// Lagrange interpolation at zero of exactly the given shares, with no
// commitment check and no threshold: the raw step Combine() guards. Used by
// tests to show what t-1 shares give (a wrong secret) and by later repair code.
Result<SecretBytes> InterpolateAtZero(std::span<const Share> shares);

// Share repair building blocks: the enrollment protocol of Nojoumian,
// Stinson and Grainger ("Unconditionally secure social secret sharing
// scheme", IET Information Security 4(4), 2010), as refined in Laing and
// Stinson, "A survey and refinement of repairable threshold schemes"
// (J. Mathematical Cryptology 12(1), 2018). t helpers H rebuild the share at
// a new index r without the secret: helper j computes its Lagrange term
// lambda_j(r) * y_j for interpolating at r over H, splits it into |H|
// random summands, and sends one to each helper (keeping one); each helper
// sends the sum of the summands it holds to the new holder, whose sum of
// those sums is f(r). Each value a party sees is uniformly random on its
// own, so no helper and not the new holder learns another's share, and
// nobody learns the secret. The new holder checks f(r) against the Feldman
// commitments (VerifyShare); a cheating helper makes that check fail.
//
// lambda_j(at) * own.y over the helpers' indices `helpers` (which must hold
// own.x, be distinct and nonzero, and not hold `at`).
Result<SecretBytes> LagrangeTerm(const Share& own, std::span<const uint32_t> helpers, uint32_t at);
// `parts` uniformly random scalars that sum to `value` (1..kMaxShareHolders).
Result<std::vector<SecretBytes>> SplitIntoSummands(const SecretBytes& value, size_t parts);
// The sum of 32-byte canonical scalars.
Result<SecretBytes> SumScalars(std::span<const SecretBytes> parts);
// How often shares were interpolated to a secret (InterpolateAtZero, and so
// Combine) in this process: tests show a repair never does.
uint64_t InterpolationsForTest();

// Share refresh building blocks: the sum of two dealings' shares at the same x,
// and the pointwise sum of their commitments.
Result<Share> AddShares(const Share& a, const Share& b);
Result<std::vector<Point>> AddCommitments(std::span<const Point> a, std::span<const Point> b);

}  // namespace qv

#endif  // QV_CRYPTO_VSS_H_
