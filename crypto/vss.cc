#include "crypto/vss.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <string>

namespace qv {

namespace {

// A scalar is canonical when it is < L; adding zero reduces, so a value that
// changes under reduction was not canonical.
bool IsCanonicalScalar(const uint8_t* s) {
  uint8_t wide[crypto_core_ristretto255_NONREDUCEDSCALARBYTES] = {0};
  std::memcpy(wide, s, kScalarSize);
  uint8_t reduced[kScalarSize];
  crypto_core_ristretto255_scalar_reduce(reduced, wide);
  const bool canonical = sodium_memcmp(reduced, s, kScalarSize) == 0;
  // Both copies may hold a share or a key: wiped before the stack is reused.
  sodium_memzero(wide, sizeof wide);
  sodium_memzero(reduced, sizeof reduced);
  return canonical;
}

bool IsZero(const uint8_t* p, size_t n) { return sodium_is_zero(p, n) == 1; }

void ScalarFromU32(uint32_t v, uint8_t out[kScalarSize]) {
  std::memset(out, 0, kScalarSize);
  out[0] = static_cast<uint8_t>(v);
  out[1] = static_cast<uint8_t>(v >> 8);
  out[2] = static_cast<uint8_t>(v >> 16);
  out[3] = static_cast<uint8_t>(v >> 24);
}

// g^s; libsodium refuses to return the identity (s == 0) and says -1, which
// for the base point can only mean that.
Point BaseMult(const uint8_t* s) {
  Point p{};
  if (crypto_scalarmult_ristretto255_base(p.data(), s) != 0) p.fill(0);
  return p;
}

// P^s for a valid P; -1 from libsodium means the identity result.
Point Mult(const uint8_t* s, const Point& p) {
  Point r{};
  if (IsZero(p.data(), kPointSize) || crypto_scalarmult_ristretto255(r.data(), s, p.data()) != 0) {
    r.fill(0);
  }
  return r;
}

Point Add(const Point& a, const Point& b) {
  Point r{};
  crypto_core_ristretto255_add(r.data(), a.data(), b.data());
  return r;
}

Status CheckPoints(std::span<const Point> points) {
  for (size_t j = 0; j < points.size(); ++j) {
    if (!IsZero(points[j].data(), kPointSize) &&
        crypto_core_ristretto255_is_valid_point(points[j].data()) != 1) {
      return InvalidArgument("commitment " + std::to_string(j) + " is not a ristretto255 point");
    }
  }
  return Status::Ok();
}

// Commitments that shares are verified against. Those of a random
// polynomial are never the identity (probability 2^-252 per coefficient),
// while identity commitments are how a forged dealing makes a zero or
// constant polynomial pass: refused. (A refresh dealing of the zero secret
// has C_0 = identity; it is only ever added to real commitments.)
Status CheckCommitments(std::span<const Point> points) {
  QV_RETURN_IF_ERROR(CheckPoints(points));
  for (size_t j = 0; j < points.size(); ++j) {
    if (IsZero(points[j].data(), kPointSize)) {
      return InvalidArgument("commitment " + std::to_string(j) + " is the identity");
    }
  }
  return Status::Ok();
}

// Horner evaluation of the polynomial with coefficients `coeffs` at x.
SecretBytes Evaluate(const std::vector<SecretBytes>& coeffs, uint32_t x) {
  uint8_t xs[kScalarSize];
  ScalarFromU32(x, xs);
  SecretBytes acc(kScalarSize);
  SecretBytes tmp(kScalarSize);
  for (size_t j = coeffs.size(); j-- > 0;) {
    crypto_core_ristretto255_scalar_mul(tmp.data(), acc.data(), xs);
    crypto_core_ristretto255_scalar_add(acc.data(), tmp.data(), coeffs[j].data());
  }
  return acc;
}

// g^{f(x)} from the commitments: Horner in the group,
// R = (((C_{t-1})^x * C_{t-2})^x ...) * C_0.
Point PublicValue(uint32_t x, std::span<const Point> commitments) {
  uint8_t xs[kScalarSize];
  ScalarFromU32(x, xs);
  Point acc{};
  for (size_t j = commitments.size(); j-- > 0;) acc = Add(Mult(xs, acc), commitments[j]);
  return acc;
}

constexpr std::string_view kShareProofDomain = "quorumvault/share-proof/v1";

// c = BLAKE2b-512(domain | be32 x | P | R | context) reduced mod L.
void ProofChallenge(uint32_t x, const Point& p, const Point& r, ByteSpan context,
                    uint8_t c[kScalarSize]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, crypto_core_ristretto255_NONREDUCEDSCALARBYTES);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kShareProofDomain.data()),
                            kShareProofDomain.size());
  const uint8_t xb[4] = {static_cast<uint8_t>(x >> 24), static_cast<uint8_t>(x >> 16),
                         static_cast<uint8_t>(x >> 8), static_cast<uint8_t>(x)};
  crypto_generichash_update(&st, xb, sizeof xb);
  crypto_generichash_update(&st, p.data(), p.size());
  crypto_generichash_update(&st, r.data(), r.size());
  crypto_generichash_update(&st, context.data(), context.size());
  uint8_t wide[crypto_core_ristretto255_NONREDUCEDSCALARBYTES];
  crypto_generichash_final(&st, wide, sizeof wide);
  crypto_core_ristretto255_scalar_reduce(c, wide);
}

}  // namespace

SecretBytes EncodeShare(const Share& share) {
  SecretBytes out(kEncodedShareSize);
  out.data()[0] = static_cast<uint8_t>(share.x >> 24);
  out.data()[1] = static_cast<uint8_t>(share.x >> 16);
  out.data()[2] = static_cast<uint8_t>(share.x >> 8);
  out.data()[3] = static_cast<uint8_t>(share.x);
  if (share.y.size() == kScalarSize) std::memcpy(out.data() + 4, share.y.data(), kScalarSize);
  return out;
}

Result<Share> DecodeShare(std::span<const uint8_t> e) {
  if (e.size() != kEncodedShareSize) {
    return InvalidArgument("a share is " + std::to_string(kEncodedShareSize) + " bytes, not " +
                           std::to_string(e.size()));
  }
  const uint32_t x = uint32_t{e[0]} << 24 | uint32_t{e[1]} << 16 | uint32_t{e[2]} << 8 | e[3];
  return Share{x, SecretBytes::CopyFrom(e.subspan(4))};
}

Result<Dealing> DealSecret(const SecretBytes& secret, uint32_t t, uint32_t n) {
  EnsureSodium();
  if (t < 1 || t > n || n > kMaxShareHolders) {
    return InvalidArgument("threshold " + std::to_string(t) + " of " + std::to_string(n) +
                           " holders: need 1 <= t <= n <= " + std::to_string(kMaxShareHolders));
  }
  if (secret.size() != kScalarSize || !IsCanonicalScalar(secret.data())) {
    return InvalidArgument("secret is not a canonical 32-byte scalar");
  }
  std::vector<SecretBytes> coeffs;
  coeffs.reserve(t);
  coeffs.push_back(secret.Clone());
  for (uint32_t j = 1; j < t; ++j) {
    SecretBytes a(kScalarSize);
    crypto_core_ristretto255_scalar_random(a.data());
    coeffs.push_back(std::move(a));
  }
  Dealing d;
  d.secret = secret.Clone();
  for (const auto& a : coeffs) d.commitments.push_back(BaseMult(a.data()));
  for (uint32_t x = 1; x <= n; ++x) d.shares.push_back(Share{x, Evaluate(coeffs, x)});
  return d;
}

Result<Dealing> Deal(uint32_t t, uint32_t n) {
  EnsureSodium();
  SecretBytes secret(kScalarSize);
  crypto_core_ristretto255_scalar_random(secret.data());
  return DealSecret(secret, t, n);
}

Result<ShareProof> ProveShare(const Share& share, ByteSpan context) {
  EnsureSodium();
  if (share.x == 0 || share.x > kMaxShareHolders || share.y.size() != kScalarSize) {
    return InvalidArgument("malformed share");
  }
  ShareProof proof;
  SecretBytes k(kScalarSize);
  crypto_core_ristretto255_scalar_random(k.data());
  proof.r = BaseMult(k.data());
  const Point p = BaseMult(share.y.data());
  uint8_t c[kScalarSize];
  ProofChallenge(share.x, p, proof.r, context, c);
  SecretBytes cy(kScalarSize);
  crypto_core_ristretto255_scalar_mul(cy.data(), c, share.y.data());
  crypto_core_ristretto255_scalar_add(proof.s.data(), k.data(), cy.data());
  return proof;
}

Status VerifyShareProof(uint32_t x, const ShareProof& proof, ByteSpan context,
                        std::span<const Point> commitments) {
  EnsureSodium();
  const std::string who = "share x=" + std::to_string(x);
  if (x == 0 || x > kMaxShareHolders) return InvalidArgument(who + ": x out of range");
  if (commitments.empty()) return InvalidArgument("no commitments");
  QV_RETURN_IF_ERROR(CheckCommitments(commitments));
  if (crypto_core_ristretto255_is_valid_point(proof.r.data()) != 1 ||
      !IsCanonicalScalar(proof.s.data())) {
    return InvalidArgument(who + ": malformed proof");
  }
  const Point p = PublicValue(x, commitments);
  uint8_t c[kScalarSize];
  ProofChallenge(x, p, proof.r, context, c);
  // g^s == R * P^c
  const Point lhs = BaseMult(proof.s.data());
  const Point rhs = Add(proof.r, Mult(c, p));
  if (sodium_memcmp(lhs.data(), rhs.data(), kPointSize) != 0) {
    return Unauthenticated(who + ": the holder did not prove it holds the share");
  }
  return Status::Ok();
}

Bytes EncodeShareProof(const ShareProof& proof) {
  Bytes out(proof.r.begin(), proof.r.end());
  out.insert(out.end(), proof.s.begin(), proof.s.end());
  return out;
}

Result<ShareProof> DecodeShareProof(ByteSpan encoded) {
  if (encoded.size() != kShareProofSize) return InvalidArgument("share proof is not 64 bytes");
  ShareProof proof;
  std::copy_n(encoded.begin(), kPointSize, proof.r.begin());
  std::copy_n(encoded.begin() + kPointSize, kScalarSize, proof.s.begin());
  return proof;
}

Status VerifyShare(const Share& share, std::span<const Point> commitments) {
  const std::string who = "share x=" + std::to_string(share.x);
  if (share.x == 0 || share.x > kMaxShareHolders) {
    return InvalidArgument(who + ": x must be in 1.." + std::to_string(kMaxShareHolders));
  }
  if (share.y.size() != kScalarSize || !IsCanonicalScalar(share.y.data())) {
    return InvalidArgument(who + ": value is not a canonical scalar");
  }
  // Zero is what a forged dealing with identity commitments hands out.
  if (IsZero(share.y.data(), kScalarSize)) return InvalidArgument(who + ": value is zero");
  if (commitments.empty()) return InvalidArgument("no commitments");
  QV_RETURN_IF_ERROR(CheckCommitments(commitments));
  const Point acc = PublicValue(share.x, commitments);
  Point lhs = BaseMult(share.y.data());
  if (sodium_memcmp(lhs.data(), acc.data(), kPointSize) != 0) {
    return Unauthenticated(who + " does not match the commitments");
  }
  return Status::Ok();
}

namespace {
std::atomic<uint64_t> interpolations{0};
}  // namespace

uint64_t InterpolationsForTest() { return interpolations.load(); }

Result<SecretBytes> LagrangeTerm(const Share& own, std::span<const uint32_t> helpers, uint32_t at) {
  EnsureSodium();
  if (own.y.size() != kScalarSize) return InvalidArgument("share value must be 32 bytes");
  if (at == 0) return InvalidArgument("a share is never rebuilt at x=0 (the secret)");
  if (helpers.empty() || helpers.size() > kMaxShareHolders) {
    return InvalidArgument("helper count " + std::to_string(helpers.size()));
  }
  std::set<uint32_t> seen;
  for (uint32_t x : helpers) {
    if (x == 0 || x == at || !seen.insert(x).second) {
      return InvalidArgument("helper index " + std::to_string(x) +
                             " is zero, the target or repeated");
    }
  }
  if (!seen.count(own.x)) return InvalidArgument("the helpers do not include this share");
  // lambda_j(at) = prod_{i != j} (at - x_i) / (x_j - x_i)
  uint8_t num[kScalarSize], den[kScalarSize], r[kScalarSize], xj[kScalarSize], xi[kScalarSize],
      d[kScalarSize], tmp[kScalarSize], inv[kScalarSize];
  ScalarFromU32(1, num);
  ScalarFromU32(1, den);
  ScalarFromU32(at, r);
  ScalarFromU32(own.x, xj);
  for (uint32_t x : helpers) {
    if (x == own.x) continue;
    ScalarFromU32(x, xi);
    crypto_core_ristretto255_scalar_sub(d, r, xi);
    crypto_core_ristretto255_scalar_mul(tmp, num, d);
    std::memcpy(num, tmp, kScalarSize);
    crypto_core_ristretto255_scalar_sub(d, xj, xi);
    crypto_core_ristretto255_scalar_mul(tmp, den, d);
    std::memcpy(den, tmp, kScalarSize);
  }
  if (crypto_core_ristretto255_scalar_invert(inv, den) != 0) {
    return Internal("Lagrange denominator is not invertible");
  }
  crypto_core_ristretto255_scalar_mul(tmp, num, inv);
  SecretBytes term(kScalarSize);
  crypto_core_ristretto255_scalar_mul(term.data(), own.y.data(), tmp);
  return term;
}

Result<std::vector<SecretBytes>> SplitIntoSummands(const SecretBytes& value, size_t parts) {
  EnsureSodium();
  if (value.size() != kScalarSize) return InvalidArgument("scalar must be 32 bytes");
  if (parts == 0 || parts > kMaxShareHolders) {
    return InvalidArgument("summand count " + std::to_string(parts));
  }
  std::vector<SecretBytes> out;
  SecretBytes last = value.Clone();
  SecretBytes tmp(kScalarSize);
  for (size_t i = 0; i + 1 < parts; ++i) {
    SecretBytes r(kScalarSize);
    crypto_core_ristretto255_scalar_random(r.data());
    crypto_core_ristretto255_scalar_sub(tmp.data(), last.data(), r.data());
    std::memcpy(last.data(), tmp.data(), kScalarSize);
    out.push_back(std::move(r));
  }
  out.push_back(std::move(last));
  return out;
}

Result<SecretBytes> SumScalars(std::span<const SecretBytes> parts) {
  EnsureSodium();
  SecretBytes sum(kScalarSize), tmp(kScalarSize);
  for (const auto& p : parts) {
    if (p.size() != kScalarSize || !IsCanonicalScalar(p.data())) {
      return InvalidArgument("a summand is not a canonical 32-byte scalar");
    }
    crypto_core_ristretto255_scalar_add(tmp.data(), sum.data(), p.data());
    std::memcpy(sum.data(), tmp.data(), kScalarSize);
  }
  return sum;
}

Result<SecretBytes> InterpolateAtZero(std::span<const Share> shares) {
  EnsureSodium();
  interpolations.fetch_add(1);
  if (shares.empty()) return InvalidArgument("no shares to interpolate");
  std::set<uint32_t> seen;
  for (const auto& s : shares) {
    if (s.x == 0) return InvalidArgument("share with x=0");
    if (!seen.insert(s.x).second) {
      return InvalidArgument("duplicate share x=" + std::to_string(s.x));
    }
    if (s.y.size() != kScalarSize) return InvalidArgument("share value must be 32 bytes");
  }
  // lambda_i = prod_{j != i} x_j / (x_j - x_i)
  SecretBytes secret(kScalarSize);
  SecretBytes term(kScalarSize);
  uint8_t num[kScalarSize], den[kScalarSize], xi[kScalarSize], xj[kScalarSize], diff[kScalarSize],
      inv[kScalarSize], tmp[kScalarSize];
  // tmp holds partial sums of the secret: wiped on every way out.
  struct Wipe {
    uint8_t* p;
    ~Wipe() { sodium_memzero(p, kScalarSize); }
  } wipe_tmp{tmp};
  for (size_t i = 0; i < shares.size(); ++i) {
    ScalarFromU32(1, num);
    ScalarFromU32(1, den);
    ScalarFromU32(shares[i].x, xi);
    for (size_t j = 0; j < shares.size(); ++j) {
      if (j == i) continue;
      ScalarFromU32(shares[j].x, xj);
      crypto_core_ristretto255_scalar_mul(tmp, num, xj);
      std::memcpy(num, tmp, kScalarSize);
      crypto_core_ristretto255_scalar_sub(diff, xj, xi);
      crypto_core_ristretto255_scalar_mul(tmp, den, diff);
      std::memcpy(den, tmp, kScalarSize);
    }
    if (crypto_core_ristretto255_scalar_invert(inv, den) != 0) {
      return Internal("Lagrange denominator is not invertible");
    }
    crypto_core_ristretto255_scalar_mul(tmp, num, inv);
    crypto_core_ristretto255_scalar_mul(term.data(), shares[i].y.data(), tmp);
    crypto_core_ristretto255_scalar_add(tmp, secret.data(), term.data());
    std::memcpy(secret.data(), tmp, kScalarSize);
  }
  return secret;
}

Result<Recovered> Combine(std::span<const Share> shares, std::span<const Point> commitments) {
  EnsureSodium();
  if (commitments.empty() || commitments.size() > kMaxShareHolders) {
    return InvalidArgument("commitment count " + std::to_string(commitments.size()) +
                           " is not a valid threshold");
  }
  QV_RETURN_IF_ERROR(CheckCommitments(commitments));
  const size_t t = commitments.size();
  std::set<uint32_t> seen;
  for (const auto& s : shares) {
    if (s.x == 0) return InvalidArgument("share with x=0");
    if (!seen.insert(s.x).second) {
      return InvalidArgument("duplicate share x=" + std::to_string(s.x));
    }
  }
  Recovered out;
  std::vector<Share> good;
  std::string why;
  for (const auto& s : shares) {
    Status st = VerifyShare(s, commitments);
    if (st.ok()) {
      if (good.size() < t) good.push_back(s.Clone());
    } else {
      out.rejected.push_back(s.x);
      if (!why.empty()) why += "; ";
      why += st.message();
    }
  }
  if (good.size() < t) {
    return FailedPrecondition("need " + std::to_string(t) + " good shares, have " +
                              std::to_string(good.size()) +
                              (why.empty() ? std::string() : " (rejected: " + why + ")"));
  }
  QV_ASSIGN_OR_RETURN(out.secret, InterpolateAtZero(good));
  Point c0 = BaseMult(out.secret.data());
  if (sodium_memcmp(c0.data(), commitments[0].data(), kPointSize) != 0) {
    // Unreachable with verified shares unless the commitments themselves are
    // inconsistent; refuse rather than hand back a wrong secret.
    return Unauthenticated("recovered secret does not match commitment C_0");
  }
  return out;
}

Result<Share> AddShares(const Share& a, const Share& b) {
  if (a.x != b.x) return InvalidArgument("cannot add shares with different x");
  if (a.y.size() != kScalarSize || b.y.size() != kScalarSize) {
    return InvalidArgument("share value must be 32 bytes");
  }
  Share s{a.x, SecretBytes(kScalarSize)};
  crypto_core_ristretto255_scalar_add(s.y.data(), a.y.data(), b.y.data());
  return s;
}

Result<std::vector<Point>> AddCommitments(std::span<const Point> a, std::span<const Point> b) {
  if (a.size() != b.size()) return InvalidArgument("commitment vectors differ in length");
  QV_RETURN_IF_ERROR(CheckPoints(a));
  QV_RETURN_IF_ERROR(CheckPoints(b));
  std::vector<Point> out;
  for (size_t j = 0; j < a.size(); ++j) out.push_back(Add(a[j], b[j]));
  return out;
}

}  // namespace qv
