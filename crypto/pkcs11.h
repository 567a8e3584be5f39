// Keys in a PKCS#11 token (issue 16): a session on the token an RFC 7512
// URI names, and the one use quorumvault makes of it today, wrapping a
// node's master key under an AES-256 key that never leaves the token
// (CKM_AES_GCM), so a copy of the node's disk and config is useless
// without the token.
//
// URIs are parsed by p11-kit (p11_kit_uri_parse): `token=` picks the token
// by label, `object=` the key by label, `module-path=` the PKCS#11 module
// (else the caller's default), `pin-value=` the user PIN (else the caller
// gives one, e.g. from QV_PKCS11_PIN). The module is loaded with dlopen.
//
// A Pkcs11Session owns the module handle and one logged-in session; it is
// not thread-safe. Errors name the PKCS#11 call and its CKR_ code.
#ifndef QV_CRYPTO_PKCS11_H_
#define QV_CRYPTO_PKCS11_H_

#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace qv {

inline constexpr std::string_view kDefaultPkcs11Module = "/usr/lib/softhsm/libsofthsm2.so";

struct Pkcs11Uri {
  std::string module_path;  // empty: the caller's default
  std::string token;        // token label
  std::string object;       // object label
  std::string pin;          // empty: the caller's
  static Result<Pkcs11Uri> Parse(const std::string& uri);
};

class Pkcs11Session {
 public:
  // Opens a session on the token `uri` names, logged in with the URI's PIN
  // or `pin`.
  static Result<std::unique_ptr<Pkcs11Session>> Open(const Pkcs11Uri& uri, const std::string& pin);
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

 private:
  struct Impl;
  explicit Pkcs11Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qv

#endif  // QV_CRYPTO_PKCS11_H_
