#include "crypto/noise.h"

#include <sodium.h>

#include <cstring>

namespace qv::noise {

namespace {

enum class Token { kE, kS, kEE, kES, kSE, kSS };

using Hash = std::array<uint8_t, kHashLen>;

const std::vector<std::vector<Token>>& Messages(Pattern p) {
  using enum Token;
  static const std::vector<std::vector<Token>> nn = {{kE}, {kE, kEE}};
  static const std::vector<std::vector<Token>> xx = {{kE}, {kE, kEE, kS, kES}, {kS, kSE}};
  static const std::vector<std::vector<Token>> ik = {{kE, kES, kS, kSS}, {kE, kEE, kSE}};
  switch (p) {
    case Pattern::kNN:
      return nn;
    case Pattern::kXX:
      return xx;
    case Pattern::kIK:
      return ik;
  }
  return xx;
}

std::string ProtocolName(Pattern p) {
  const char* name = p == Pattern::kNN ? "NN" : p == Pattern::kXX ? "XX" : "IK";
  return std::string("Noise_") + name + "_25519_ChaChaPoly_BLAKE2b";
}

Hash Blake2b(ByteSpan a, ByteSpan b = {}) {
  Hash out;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, kHashLen);
  crypto_generichash_update(&st, a.data(), a.size());
  crypto_generichash_update(&st, b.data(), b.size());
  crypto_generichash_final(&st, out.data(), kHashLen);
  return out;
}

// HMAC (RFC 2104) over BLAKE2b-512 with its 128-byte block, as Noise's
// HKDF requires; libsodium offers keyed BLAKE2b but not this construction.
Hash HmacBlake2b(ByteSpan key, ByteSpan data) {
  constexpr size_t kBlock = 128;
  uint8_t k0[kBlock] = {0};
  if (key.size() > kBlock) {
    Hash hk = Blake2b(key);
    std::memcpy(k0, hk.data(), hk.size());
  } else {
    std::memcpy(k0, key.data(), key.size());
  }
  uint8_t pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k0[i] ^ 0x36;
  Hash inner = Blake2b(ByteSpan(pad, kBlock), data);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = k0[i] ^ 0x5c;
  Hash out = Blake2b(ByteSpan(pad, kBlock), inner);
  sodium_memzero(k0, sizeof k0);
  sodium_memzero(pad, sizeof pad);
  sodium_memzero(inner.data(), inner.size());
  return out;
}

void Hkdf2(const Hash& ck, ByteSpan ikm, Hash& out1, Hash& out2) {
  Hash temp = HmacBlake2b(ck, ikm);
  const uint8_t one = 1;
  out1 = HmacBlake2b(temp, ByteSpan(&one, 1));
  uint8_t buf[kHashLen + 1];
  std::memcpy(buf, out1.data(), kHashLen);
  buf[kHashLen] = 2;
  out2 = HmacBlake2b(temp, ByteSpan(buf, sizeof buf));
  sodium_memzero(temp.data(), temp.size());
  sodium_memzero(buf, sizeof buf);
}

}  // namespace

Result<Pattern> ParseProtocolName(std::string_view name) {
  for (Pattern p : {Pattern::kNN, Pattern::kXX, Pattern::kIK}) {
    if (name == ProtocolName(p)) return p;
  }
  return InvalidArgument("unsupported Noise protocol " + std::string(name));
}

// ---- CipherState -----------------------------------------------------------

Status CipherState::InitializeKey(ByteSpan key) {
  if (key.size() != kAeadKeySize) return InvalidArgument("Noise key must be 32 bytes");
  key_ = SecretBytes::CopyFrom(key);
  n_ = 0;
  seal_.reset();
  open_.reset();
  return Status::Ok();
}

void CipherState::Nonce(uint8_t out[12]) const {
  // ChaChaPoly in Noise: 32 zero bits, then the counter little-endian.
  std::memset(out, 0, 12);
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<uint8_t>(n_ >> (8 * i));
}

// The allocating forms are the in-place ones plus a buffer.
Result<Bytes> CipherState::EncryptWithAd(ByteSpan ad, ByteSpan plaintext) {
  if (!HasKey()) return Bytes(plaintext.begin(), plaintext.end());
  Bytes out(plaintext.size() + kAeadTagSize);
  if (!plaintext.empty()) std::memcpy(out.data(), plaintext.data(), plaintext.size());
  QV_RETURN_IF_ERROR(SealInPlace(ad, out.data(), plaintext.size()));
  return out;
}

Result<Bytes> CipherState::DecryptWithAd(ByteSpan ad, ByteSpan ciphertext) {
  if (!HasKey()) return Bytes(ciphertext.begin(), ciphertext.end());
  if (ciphertext.size() < kAeadTagSize) return InvalidArgument("Noise message shorter than a tag");
  Bytes out(ciphertext.size() - kAeadTagSize);
  QV_RETURN_IF_ERROR(OpenTo(ad, ciphertext, out.data()));
  return out;
}

Status CipherState::SealInPlace(ByteSpan ad, uint8_t* buf, size_t len) {
  return SealTo(ad, ByteSpan(buf, len), {}, buf);
}

Status CipherState::SealTo(ByteSpan ad, ByteSpan plaintext, ByteSpan trailer, uint8_t* out) {
  if (!HasKey()) return FailedPrecondition("Noise cipher has no key");
  if (n_ == UINT64_MAX) return FailedPrecondition("Noise nonce exhausted; rekey the channel");
  if (!seal_) {
    QV_ASSIGN_OR_RETURN(seal_, AeadKey::New(CipherSuite::kChaCha20Poly1305, key_.span(), true));
  }
  uint8_t nonce[12];
  Nonce(nonce);
  QV_RETURN_IF_ERROR(seal_->Seal(nonce, ad, plaintext, out, trailer));
  ++n_;
  return Status::Ok();
}

Status CipherState::OpenTo(ByteSpan ad, ByteSpan ciphertext, uint8_t* out) {
  if (!HasKey()) return FailedPrecondition("Noise cipher has no key");
  if (n_ == UINT64_MAX) return FailedPrecondition("Noise nonce exhausted; rekey the channel");
  if (ciphertext.size() < kAeadTagSize) return InvalidArgument("Noise message shorter than a tag");
  if (!open_) {
    QV_ASSIGN_OR_RETURN(open_, AeadKey::New(CipherSuite::kChaCha20Poly1305, key_.span(), false));
  }
  uint8_t nonce[12];
  Nonce(nonce);
  if (!open_->Open(nonce, ad, ciphertext, out).ok()) {
    return Unauthenticated("Noise message failed authentication");
  }
  ++n_;
  return Status::Ok();
}

// ---- HandshakeState --------------------------------------------------------

Result<std::unique_ptr<HandshakeState>> HandshakeState::New(const HandshakeConfig& c) {
  EnsureSodium();
  std::unique_ptr<HandshakeState> hs(new HandshakeState());
  hs->pattern_ = c.pattern;
  hs->initiator_ = c.initiator;
  const bool needs_s = c.pattern != Pattern::kNN;
  if (needs_s) {
    if (c.static_secret == nullptr || c.static_secret->size() != kDhLen) {
      return InvalidArgument("Noise pattern needs a 32-byte static key");
    }
    hs->s_ = c.static_secret->Clone();
    crypto_scalarmult_base(hs->s_pub_.data(), hs->s_.data());
  }
  if (c.fixed_ephemeral != nullptr) hs->e_ = c.fixed_ephemeral->Clone();

  // InitializeSymmetric: a name of at most HASHLEN bytes is used padded.
  const std::string name = ProtocolName(c.pattern);
  hs->h_.fill(0);
  std::memcpy(hs->h_.data(), name.data(), name.size());
  hs->ck_ = hs->h_;
  hs->MixHash(c.prologue);
  // Pre-message of IK: the responder's static key is known to both.
  if (c.pattern == Pattern::kIK) {
    if (c.initiator) {
      if (!c.remote_static) return InvalidArgument("IK initiator needs the responder's key");
      hs->rs_ = c.remote_static;
      hs->MixHash(*hs->rs_);
    } else {
      hs->MixHash(hs->s_pub_);
    }
  }
  return hs;
}

HandshakeState::~HandshakeState() {
  sodium_memzero(ck_.data(), ck_.size());
  sodium_memzero(h_.data(), h_.size());
}

void HandshakeState::MixHash(ByteSpan data) { h_ = Blake2b(h_, data); }

Status HandshakeState::MixKey(ByteSpan ikm) {
  Hash ck, k;
  Hkdf2(ck_, ikm, ck, k);
  ck_ = ck;
  Status s = cs_.InitializeKey(ByteSpan(k.data(), kAeadKeySize));  // HASHLEN 64: truncate
  sodium_memzero(k.data(), k.size());
  sodium_memzero(ck.data(), ck.size());
  return s;
}

Result<Bytes> HandshakeState::EncryptAndHash(ByteSpan plaintext) {
  QV_ASSIGN_OR_RETURN(Bytes c, cs_.EncryptWithAd(h_, plaintext));
  MixHash(c);
  return c;
}

Result<Bytes> HandshakeState::DecryptAndHash(ByteSpan ciphertext) {
  QV_ASSIGN_OR_RETURN(Bytes p, cs_.DecryptWithAd(h_, ciphertext));
  MixHash(ciphertext);
  return p;
}

Status HandshakeState::Dh(const SecretBytes& secret, const DhPublic& pub) {
  SecretBytes shared(kDhLen);
  // libsodium refuses an all-zero result (a small-order peer key).
  if (crypto_scalarmult(shared.data(), secret.data(), pub.data()) != 0) {
    return Unauthenticated("Noise peer sent a weak (small-order) public key");
  }
  return MixKey(shared.span());
}

// The DH tokens, the same whichever side writes the message: "es" is
// DH(e, rs) for the initiator and DH(s, re) for the responder, and so on.
Status HandshakeState::DhToken(uint8_t token) {
  switch (static_cast<Token>(token)) {
    case Token::kEE:
      return Dh(e_, *re_);
    case Token::kES:
      return initiator_ ? Dh(e_, *rs_) : Dh(s_, *re_);
    case Token::kSE:
      return initiator_ ? Dh(s_, *re_) : Dh(e_, *rs_);
    case Token::kSS:
      return Dh(s_, *rs_);
    default:
      return Internal("not a DH token");
  }
}

bool HandshakeState::IsComplete() const { return message_ >= Messages(pattern_).size(); }

bool HandshakeState::IsMyTurn() const {
  return !IsComplete() && ((message_ % 2 == 0) == initiator_);
}

Result<Bytes> HandshakeState::WriteMessage(ByteSpan payload) {
  if (!IsMyTurn()) return InvalidArgument("Noise: not this side's turn to write");
  Bytes out;
  for (Token t : Messages(pattern_)[message_]) {
    switch (t) {
      case Token::kE:
        if (e_.empty()) {
          e_ = SecretBytes(kDhLen);
          randombytes_buf(e_.data(), kDhLen);
        }
        crypto_scalarmult_base(e_pub_.data(), e_.data());
        AppendBytes(out, e_pub_);
        MixHash(e_pub_);
        break;
      case Token::kS: {
        QV_ASSIGN_OR_RETURN(Bytes c, EncryptAndHash(s_pub_));
        AppendBytes(out, c);
        break;
      }
      default:
        QV_RETURN_IF_ERROR(DhToken(static_cast<uint8_t>(t)));
        break;
    }
  }
  QV_ASSIGN_OR_RETURN(Bytes c, EncryptAndHash(payload));
  AppendBytes(out, c);
  if (out.size() > kMaxMessage) return InvalidArgument("Noise message larger than 65535 bytes");
  ++message_;
  return out;
}

Result<Bytes> HandshakeState::ReadMessage(ByteSpan msg) {
  if (IsComplete() || IsMyTurn()) return InvalidArgument("Noise: unexpected handshake message");
  if (msg.size() > kMaxMessage) return InvalidArgument("Noise message larger than 65535 bytes");
  for (Token t : Messages(pattern_)[message_]) {
    switch (t) {
      case Token::kE: {
        if (msg.size() < kDhLen) return InvalidArgument("Noise handshake message too short");
        DhPublic re;
        std::memcpy(re.data(), msg.data(), kDhLen);
        re_ = re;
        MixHash(re);
        msg = msg.subspan(kDhLen);
        break;
      }
      case Token::kS: {
        const size_t len = kDhLen + (cs_.HasKey() ? kAeadTagSize : 0);
        if (msg.size() < len) return InvalidArgument("Noise handshake message too short");
        QV_ASSIGN_OR_RETURN(Bytes p, DecryptAndHash(msg.first(len)));
        DhPublic rs;
        std::memcpy(rs.data(), p.data(), kDhLen);
        rs_ = rs;
        msg = msg.subspan(len);
        break;
      }
      default:
        QV_RETURN_IF_ERROR(DhToken(static_cast<uint8_t>(t)));
        break;
    }
  }
  QV_ASSIGN_OR_RETURN(Bytes payload, DecryptAndHash(msg));
  ++message_;
  return payload;
}

Result<std::pair<CipherState, CipherState>> HandshakeState::Split() {
  if (!IsComplete()) return FailedPrecondition("Noise handshake is not complete");
  Hash k1, k2;
  Hkdf2(ck_, {}, k1, k2);
  CipherState c1, c2;
  Status s1 = c1.InitializeKey(ByteSpan(k1.data(), kAeadKeySize));
  Status s2 = c2.InitializeKey(ByteSpan(k2.data(), kAeadKeySize));
  sodium_memzero(k1.data(), k1.size());
  sodium_memzero(k2.data(), k2.size());
  QV_RETURN_IF_ERROR(s1);
  QV_RETURN_IF_ERROR(s2);
  if (initiator_) return std::make_pair(std::move(c1), std::move(c2));
  return std::make_pair(std::move(c2), std::move(c1));
}

}  // namespace qv::noise
