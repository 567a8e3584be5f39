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

namespace {

PossessionProof MacWith(const uint8_t* session_key, ByteSpan context) {
  PossessionProof out;
  crypto_generichash(out.data(), out.size(), context.data(), context.size(), session_key,
                     crypto_kx_SESSIONKEYBYTES);
  return out;
}

}  // namespace

Result<PossessionProof> ProvePossession(const BoxKeyPair& reply,
                                        const std::array<uint8_t, 32>& peer_public,
                                        ByteSpan context) {
  EnsureSodium();
  if (reply.secret_key.size() != crypto_kx_SECRETKEYBYTES) return InvalidArgument("bad key size");
  SecretBytes rx(crypto_kx_SESSIONKEYBYTES), tx(crypto_kx_SESSIONKEYBYTES);
  if (crypto_kx_client_session_keys(rx.data(), tx.data(), reply.public_key.data(),
                                    reply.secret_key.data(), peer_public.data()) != 0) {
    return InvalidArgument("the peer's X25519 key is not usable");
  }
  return MacWith(tx.data(), context);
}

Status VerifyPossession(const SecretBytes& peer_secret, const std::array<uint8_t, 32>& peer_public,
                        const std::array<uint8_t, kBoxPublicKeySize>& reply_public,
                        ByteSpan context, ByteSpan proof) {
  EnsureSodium();
  SecretBytes rx(crypto_kx_SESSIONKEYBYTES), tx(crypto_kx_SESSIONKEYBYTES);
  if (peer_secret.size() != crypto_kx_SECRETKEYBYTES ||
      crypto_kx_server_session_keys(rx.data(), tx.data(), peer_public.data(), peer_secret.data(),
                                    reply_public.data()) != 0) {
    return PermissionDenied("no proof of the reply key can be checked");
  }
  const PossessionProof want = MacWith(rx.data(), context);
  if (proof.size() != want.size() || sodium_memcmp(proof.data(), want.data(), want.size()) != 0) {
    return PermissionDenied("no valid proof of possession of the request's one-time reply key");
  }
  return Status::Ok();
}

}  // namespace qv
