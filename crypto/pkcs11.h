// Keys in a PKCS#11 token (issue 16): a session on the token an RFC 7512
// URI names, and two uses of it:
//  - wrapping a node's master key under an AES-256 key that never leaves
//    the token (CKM_AES_GCM), so a copy of the node's disk and config is
//    useless without the token;
//  - a custodian's or requester's Ed25519 signing key that never leaves the
//    token (CKM_EDDSA, PKCS#11 3.0), beside a private data object of the
//    same label holding the seed of its channel key. A token cannot do
//    the X25519 a Noise handshake needs, so the principal proves itself on
//    the channel with that second key (pinned as `channel_key` in the
//    cluster file); it authorizes listing and posting only, while every
//    request and approval is signed inside the token.
//
// URIs are parsed by p11-kit (p11_kit_uri_parse): `token=` picks the token
// by label, `object=` the key by label, `module-path=` the PKCS#11 module
// (else the caller's, else $QV_PKCS11_MODULE, else SoftHSM2's), `pin-value=` the user PIN (else the
// caller gives one, e.g. from QV_PKCS11_PIN). The module is loaded with dlopen.
//
// A Pkcs11Session owns the module handle and one logged-in session; it is
// not thread-safe. PKCS#11 logins are per process: a session opened while
// another is logged in to the token shares that login (its PIN unchecked). Errors name the PKCS#11
// call and its CKR_ code.
#ifndef QV_CRYPTO_PKCS11_H_
#define QV_CRYPTO_PKCS11_H_

#include <memory>
#include <mutex>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/secret.h"

namespace qv {

inline constexpr std::string_view kDefaultPkcs11Module = "/usr/lib/softhsm/libsofthsm2.so";

struct Pkcs11Uri {
  std::string module_path;  // empty: QV_PKCS11_MODULE, else kDefaultPkcs11Module
  std::string token;        // token label
  std::string object;       // object label
  std::string pin;          // empty: the caller's
  static Result<Pkcs11Uri> Parse(const std::string& uri);
};

class Pkcs11Session {
 public:
  // Opens a session on the token `uri` names, logged in with the URI's PIN
  // or `pin`.
  static Result<std::unique_ptr<Pkcs11Session>> Open(const Pkcs11Uri& uri, std::string_view pin);
  ~Pkcs11Session();
  Pkcs11Session(const Pkcs11Session&) = delete;
  Pkcs11Session& operator=(const Pkcs11Session&) = delete;

  // Creates an AES-256 key labelled `label` in the token: sensitive, not
  // extractable, for encryption only. kAlreadyExists if one is there.
  Status GenerateWrappingKey(const std::string& label);
  // Seals `secret` under the token's key `label` (AES-256-GCM, a random
  // 12-byte nonce, `aad` bound): "QVWK" | u32 1 | nonce | ciphertext+tag.
  Result<Bytes> Wrap(const std::string& label, const SecretBytes& secret, ByteSpan aad);
  // The reverse; kUnauthenticated when the token's key or `aad` differ.
  Result<SecretBytes> Unwrap(const std::string& label, ByteSpan wrapped, ByteSpan aad);

  // Creates an Ed25519 key pair labelled `label` (the private half
  // sensitive, not extractable, for signing only) and a private data object
  // `label` holding a random 32-byte channel seed; returns the public key.
  // kAlreadyExists if the token holds any of them.
  Result<PublicKey> GenerateSigningKey(const std::string& label);

 private:
  friend class Pkcs11Signer;
  struct Impl;
  explicit Pkcs11Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The token's Ed25519 key `label` as a Signer. Owns its session; signing
// is serialized by a mutex. Each signature is checked against the public
// key before it is returned (a token that signs wrongly is an error, not
// a bad approval sent on).
class Pkcs11Signer final : public Signer {
 public:
  static Result<std::unique_ptr<Pkcs11Signer>> New(std::unique_ptr<Pkcs11Session> session,
                                                   const std::string& label);
  const PublicKey& public_key() const override { return public_key_; }
  Result<Signature> SignMessage(ByteSpan message) const override;
  // The channel key stored beside the signing key (see the top of this file).
  Result<std::unique_ptr<SigningKey>> ChannelKey() const;

 private:
  Pkcs11Signer(std::unique_ptr<Pkcs11Session> s, std::string label, unsigned long key,
               const PublicKey& pk)
      : session_(std::move(s)), label_(std::move(label)), key_(key), public_key_(pk) {}
  std::unique_ptr<Pkcs11Session> session_;
  const std::string label_;
  const unsigned long key_;  // CK_OBJECT_HANDLE of the private key
  const PublicKey public_key_;
  mutable std::mutex mu_;  // a PKCS#11 session runs one operation at a time
};

}  // namespace qv

#endif  // QV_CRYPTO_PKCS11_H_
