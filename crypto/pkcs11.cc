#include "crypto/pkcs11.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <sodium.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "base/wire.h"

namespace qv {

namespace {

constexpr std::string_view kWrapMagic = "QVWK";
constexpr uint32_t kWrapVersion = 1;
constexpr size_t kNonce = 12, kTag = 16;

// SoftHSM 2.6 leaks a few OpenSSL objects (ASN.1 strings) for each Ed25519
// key it touches; they are the module's, not ours to free. Under
// LeakSanitizer, what is allocated while a function here calls into the
// module (its objects, and the few of ours around those calls, each owned
// by a unique_ptr) is not reported; every other allocation still is.
// Elsewhere this is nothing.
struct ModuleAllocations {
#if defined(__SANITIZE_ADDRESS__)
  ModuleAllocations() { __lsan_disable(); }
  ~ModuleAllocations() { __lsan_enable(); }
#else
  ModuleAllocations() = default;
#endif
  ModuleAllocations(const ModuleAllocations&) = delete;
  ModuleAllocations& operator=(const ModuleAllocations&) = delete;
};

Status Ckr(const char* call, CK_RV rv) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "PKCS#11 %s failed: CKR 0x%lx", call, rv);
  if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE) {
    return PermissionDenied(std::string(buf) + " (wrong PIN)");
  }
  return IoError(buf);
}

// A fixed-width PKCS#11 label (blank padded) as a string.
std::string Unpad(const unsigned char* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

Result<Pkcs11Uri> Pkcs11Uri::Parse(const std::string& text) {
  P11KitUri* uri = p11_kit_uri_new();
  if (uri == nullptr) return Internal("p11_kit_uri_new");
  const int rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, uri);
  if (rc != P11_KIT_URI_OK) {
    p11_kit_uri_free(uri);
    return InvalidArgument("not a PKCS#11 URI (RFC 7512, pkcs11:token=...;object=...): " +
                           std::string(p11_kit_uri_message(rc)));
  }
  Pkcs11Uri out;
  if (const char* m = p11_kit_uri_get_module_path(uri)) out.module_path = m;
  if (const char* p = p11_kit_uri_get_pin_value(uri)) out.pin = p;
  if (CK_TOKEN_INFO* t = p11_kit_uri_get_token_info(uri)) out.token = Unpad(t->label, 32);
  if (CK_ATTRIBUTE* a = p11_kit_uri_get_attribute(uri, CKA_LABEL); a && a->pValue) {
    out.object.assign(static_cast<const char*>(a->pValue), a->ulValueLen);
  }
  p11_kit_uri_free(uri);
  if (out.token.empty() || out.object.empty()) {
    return InvalidArgument("a PKCS#11 URI needs token= and object=");
  }
  return out;
}

struct Pkcs11Session::Impl {
  void* module = nullptr;
  CK_FUNCTION_LIST* f = nullptr;
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  bool initialized = false, logged_in = false;

  ~Impl() {
    [[maybe_unused]] const ModuleAllocations module_allocations;
    if (logged_in) f->C_Logout(session);
    if (session != CK_INVALID_HANDLE) f->C_CloseSession(session);
    if (initialized) f->C_Finalize(nullptr);
    if (module != nullptr) dlclose(module);
  }

  // The one object of class `cls` labelled `label`.
  Result<CK_OBJECT_HANDLE> Find(CK_OBJECT_CLASS cls, const std::string& label) {
    CK_ATTRIBUTE want[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    if (CK_RV rv = f->C_FindObjectsInit(session, want, 2); rv != CKR_OK) {
      return Ckr("C_FindObjectsInit", rv);
    }
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv = f->C_FindObjects(session, found, 2, &n);
    f->C_FindObjectsFinal(session);
    if (rv != CKR_OK) return Ckr("C_FindObjects", rv);
    const char* what = cls == CKO_SECRET_KEY    ? "secret key"
                       : cls == CKO_PRIVATE_KEY ? "private key"
                       : cls == CKO_PUBLIC_KEY  ? "public key"
                                                : "data object";
    if (n == 0) return NotFound(std::string("the token holds no ") + what + " labelled " + label);
    if (n > 1)
      return FailedPrecondition(std::string("the token holds two ") + what + "s labelled " + label);
    return found[0];
  }
  Result<CK_OBJECT_HANDLE> FindKey(const std::string& label) { return Find(CKO_SECRET_KEY, label); }

  // An Ed25519 public key as the token gives CKA_EC_POINT: DER OCTET STRING
  // (04 20 || key), or the raw 32 bytes some modules return.
  Result<PublicKey> EdPublicKey(CK_OBJECT_HANDLE pub) {
    uint8_t buf[64];
    CK_ATTRIBUTE a = {CKA_EC_POINT, buf, sizeof buf};
    if (CK_RV rv = f->C_GetAttributeValue(session, pub, &a, 1); rv != CKR_OK) {
      return Ckr("C_GetAttributeValue(CKA_EC_POINT)", rv);
    }
    ByteSpan point(buf, a.ulValueLen);
    if (point.size() == 34 && point[0] == 0x04 && point[1] == 0x20) point = point.subspan(2);
    if (point.size() != kPublicKeySize)
      return Corruption("the token's Ed25519 public key is malformed");
    return PublicKeyFromText(HexEncode(point));
  }
};

Pkcs11Session::Pkcs11Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pkcs11Session::~Pkcs11Session() = default;

Result<std::unique_ptr<Pkcs11Session>> Pkcs11Session::Open(const Pkcs11Uri& uri,
                                                           std::string_view pin) {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  auto impl = std::make_unique<Impl>();
  const char* env = std::getenv("QV_PKCS11_MODULE");
  const std::string path = !uri.module_path.empty()         ? uri.module_path
                           : env != nullptr && *env != '\0' ? std::string(env)
                                                            : std::string(kDefaultPkcs11Module);
  impl->module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (impl->module == nullptr) return IoError("cannot load PKCS#11 module " + path);
  auto get =
      reinterpret_cast<CK_RV (*)(CK_FUNCTION_LIST**)>(dlsym(impl->module, "C_GetFunctionList"));
  if (get == nullptr) return IoError(path + " is not a PKCS#11 module");
  if (CK_RV rv = get(&impl->f); rv != CKR_OK) return Ckr("C_GetFunctionList", rv);
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  // A module already initialized in this process (another open session)
  // is used as it is, and left for that session to finalize.
  const CK_RV init = impl->f->C_Initialize(&args);
  if (init != CKR_OK && init != CKR_CRYPTOKI_ALREADY_INITIALIZED) return Ckr("C_Initialize", init);
  impl->initialized = init == CKR_OK;
  CK_ULONG count = 0;
  if (CK_RV rv = impl->f->C_GetSlotList(CK_TRUE, nullptr, &count); rv != CKR_OK) {
    return Ckr("C_GetSlotList", rv);
  }
  if (count > 1024) return FailedPrecondition("more than 1024 PKCS#11 slots");
  std::vector<CK_SLOT_ID> slots(count);
  if (CK_RV rv = impl->f->C_GetSlotList(CK_TRUE, slots.data(), &count); rv != CKR_OK) {
    return Ckr("C_GetSlotList", rv);
  }
  std::optional<CK_SLOT_ID> slot;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_TOKEN_INFO info{};
    if (impl->f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
        Unpad(info.label, sizeof info.label) == uri.token) {
      slot = slots[i];
    }
  }
  if (!slot) return NotFound("no PKCS#11 token labelled " + uri.token + " in " + path);
  if (CK_RV rv = impl->f->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                        nullptr, &impl->session);
      rv != CKR_OK) {
    return Ckr("C_OpenSession", rv);
  }
  const std::string_view use = uri.pin.empty() ? pin : std::string_view(uri.pin);
  if (use.empty()) return InvalidArgument("no PIN for token " + uri.token + " (QV_PKCS11_PIN)");
  CK_RV rv =
      impl->f->C_Login(impl->session, CKU_USER,
                       reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(use.data())), use.size());
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return Ckr("C_Login", rv);
  impl->logged_in = rv == CKR_OK;
  return std::unique_ptr<Pkcs11Session>(new Pkcs11Session(std::move(impl)));
}

Status Pkcs11Session::GenerateWrappingKey(const std::string& label) {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  if (impl_->FindKey(label).ok()) return AlreadyExists("the token already holds key " + label);
  CK_MECHANISM mech = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_ULONG len = 32;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {{CKA_VALUE_LEN, &len, sizeof len},
                         {CKA_TOKEN, &yes, sizeof yes},
                         {CKA_PRIVATE, &yes, sizeof yes},
                         {CKA_SENSITIVE, &yes, sizeof yes},
                         {CKA_EXTRACTABLE, &no, sizeof no},
                         {CKA_ENCRYPT, &yes, sizeof yes},
                         {CKA_DECRYPT, &yes, sizeof yes},
                         {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  if (CK_RV rv = impl_->f->C_GenerateKey(impl_->session, &mech, tmpl, 8, &key); rv != CKR_OK) {
    return Ckr("C_GenerateKey", rv);
  }
  return Status::Ok();
}

Result<Bytes> Pkcs11Session::Wrap(const std::string& label, const SecretBytes& secret,
                                  ByteSpan aad) {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  QV_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE key, impl_->FindKey(label));
  std::array<uint8_t, kNonce> nonce;
  randombytes_buf(nonce.data(), nonce.size());
  CK_GCM_PARAMS gcm{nonce.data(), kNonce,  kNonce * 8, const_cast<uint8_t*>(aad.data()),
                    aad.size(),   kTag * 8};
  CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
  if (CK_RV rv = impl_->f->C_EncryptInit(impl_->session, &mech, key); rv != CKR_OK) {
    return Ckr("C_EncryptInit", rv);
  }
  Bytes sealed(secret.size() + kTag);
  CK_ULONG n = sealed.size();
  if (CK_RV rv = impl_->f->C_Encrypt(impl_->session, const_cast<uint8_t*>(secret.data()),
                                     secret.size(), sealed.data(), &n);
      rv != CKR_OK) {
    return Ckr("C_Encrypt", rv);
  }
  sealed.resize(n);
  WireWriter w;
  w.Raw(AsBytes(kWrapMagic)).U32(kWrapVersion).Fixed(nonce).Blob(sealed);
  return w.Take();
}

Result<SecretBytes> Pkcs11Session::Unwrap(const std::string& label, ByteSpan wrapped,
                                          ByteSpan aad) {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  WireReader r(wrapped);
  QV_RETURN_IF_ERROR(r.ExpectMagic(kWrapMagic, "token-wrapped key"));
  QV_ASSIGN_OR_RETURN(uint32_t version, r.U32());
  if (version != kWrapVersion)
    return InvalidArgument("wrapped key version " + std::to_string(version));
  QV_ASSIGN_OR_RETURN(auto nonce, r.Fixed<kNonce>());
  QV_ASSIGN_OR_RETURN(Bytes sealed, r.Blob(4096));
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  if (sealed.size() < kTag) return Corruption("wrapped key too short");
  QV_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE key, impl_->FindKey(label));
  CK_GCM_PARAMS gcm{nonce.data(), kNonce,  kNonce * 8, const_cast<uint8_t*>(aad.data()),
                    aad.size(),   kTag * 8};
  CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
  if (CK_RV rv = impl_->f->C_DecryptInit(impl_->session, &mech, key); rv != CKR_OK) {
    return Ckr("C_DecryptInit", rv);
  }
  SecretBytes out = SecretBytes::Random(sealed.size());  // overwritten below
  CK_ULONG n = out.size();
  CK_RV rv = impl_->f->C_Decrypt(impl_->session, sealed.data(), sealed.size(), out.data(), &n);
  // Modules report a failed GCM tag variously (SoftHSM2: a general error);
  // any failure here, after the key and mechanism were accepted, is one.
  if (rv != CKR_OK) {
    return Unauthenticated("the token's key does not open this wrapped key (" +
                           Ckr("C_Decrypt", rv).message() + ")");
  }
  if (n != sealed.size() - kTag) return Corruption("unwrapped key has the wrong length");
  return SecretBytes::CopyFrom(ByteSpan(out.data(), n));
}

// DER of the curve's OID 1.3.101.112 (RFC 8410), as CKA_EC_PARAMS names it.
constexpr uint8_t kEd25519Params[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
constexpr std::string_view kChannelApplication = "quorumvault channel key";

Result<PublicKey> Pkcs11Session::GenerateSigningKey(const std::string& label) {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_DATA}) {
    if (impl_->Find(cls, label).ok()) return AlreadyExists("the token already holds " + label);
  }
  CK_MECHANISM mech = {CKM_EC_EDWARDS_KEY_PAIR_GEN, nullptr, 0};
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE pub_tmpl[] = {
      {CKA_EC_PARAMS, const_cast<uint8_t*>(kEd25519Params), sizeof kEd25519Params},
      {CKA_TOKEN, &yes, sizeof yes},
      {CKA_VERIFY, &yes, sizeof yes},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
  CK_ATTRIBUTE priv_tmpl[] = {{CKA_TOKEN, &yes, sizeof yes},
                              {CKA_PRIVATE, &yes, sizeof yes},
                              {CKA_SENSITIVE, &yes, sizeof yes},
                              {CKA_EXTRACTABLE, &no, sizeof no},
                              {CKA_SIGN, &yes, sizeof yes},
                              {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  if (CK_RV rv = impl_->f->C_GenerateKeyPair(impl_->session, &mech, pub_tmpl, 4, priv_tmpl, 6, &pub,
                                             &priv);
      rv != CKR_OK) {
    if (rv == CKR_MECHANISM_INVALID) {
      return FailedPrecondition(
          "this token cannot make Ed25519 keys (CKM_EC_EDWARDS_KEY_PAIR_GEN)");
    }
    return Ckr("C_GenerateKeyPair", rv);
  }
  QV_ASSIGN_OR_RETURN(PublicKey pk, impl_->EdPublicKey(pub));
  // The channel seed is made here (libsodium) and stored private in the
  // token; it is the one secret of this identity that leaves the token,
  // and only to a holder of the PIN.
  SecretBytes seed = SecretBytes::Random(32);
  CK_OBJECT_CLASS data = CKO_DATA;
  CK_ATTRIBUTE data_tmpl[] = {
      {CKA_CLASS, &data, sizeof data},
      {CKA_TOKEN, &yes, sizeof yes},
      {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_MODIFIABLE, &no, sizeof no},
      {CKA_APPLICATION, const_cast<char*>(kChannelApplication.data()), kChannelApplication.size()},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_VALUE, seed.data(), seed.size()}};
  CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
  if (CK_RV rv = impl_->f->C_CreateObject(impl_->session, data_tmpl, 7, &obj); rv != CKR_OK) {
    impl_->f->C_DestroyObject(impl_->session, priv);
    impl_->f->C_DestroyObject(impl_->session, pub);
    return Ckr("C_CreateObject", rv);
  }
  return pk;
}

Result<std::unique_ptr<Pkcs11Signer>> Pkcs11Signer::New(std::unique_ptr<Pkcs11Session> session,
                                                        const std::string& label) {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  Pkcs11Session::Impl& s = *session->impl_;
  QV_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE priv, s.Find(CKO_PRIVATE_KEY, label));
  QV_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE pub, s.Find(CKO_PUBLIC_KEY, label));
  CK_KEY_TYPE type = 0;
  CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof type};
  if (CK_RV rv = s.f->C_GetAttributeValue(s.session, priv, &a, 1); rv != CKR_OK) {
    return Ckr("C_GetAttributeValue(CKA_KEY_TYPE)", rv);
  }
  if (type != CKK_EC_EDWARDS)
    return InvalidArgument("the token's key " + label + " is not Ed25519");
  QV_ASSIGN_OR_RETURN(PublicKey pk, s.EdPublicKey(pub));
  return std::unique_ptr<Pkcs11Signer>(new Pkcs11Signer(std::move(session), label, priv, pk));
}

Result<Signature> Pkcs11Signer::SignMessage(ByteSpan message) const {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  std::lock_guard<std::mutex> lock(mu_);
  Pkcs11Session::Impl& s = *session_->impl_;
  CK_MECHANISM mech = {CKM_EDDSA, nullptr, 0};  // pure Ed25519 (RFC 8032)
  if (CK_RV rv = s.f->C_SignInit(s.session, &mech, key_); rv != CKR_OK) {
    return Ckr("C_SignInit(CKM_EDDSA)", rv);
  }
  Signature sig{};
  CK_ULONG n = sig.size();
  // Modules refuse a null pointer even for an empty message.
  uint8_t empty = 0;
  uint8_t* data = message.empty() ? &empty : const_cast<uint8_t*>(message.data());
  if (CK_RV rv = s.f->C_Sign(s.session, data, message.size(), sig.data(), &n); rv != CKR_OK) {
    return Ckr("C_Sign", rv);
  }
  if (n != sig.size()) return Corruption("the token's signature has the wrong length");
  if (!VerifySignature(public_key_, message, sig).ok()) {
    return Corruption("the token's signature does not verify under its own public key");
  }
  return sig;
}

Result<std::unique_ptr<SigningKey>> Pkcs11Signer::ChannelKey() const {
  [[maybe_unused]] const ModuleAllocations module_allocations;
  std::lock_guard<std::mutex> lock(mu_);
  Pkcs11Session::Impl& s = *session_->impl_;
  QV_ASSIGN_OR_RETURN(CK_OBJECT_HANDLE obj, s.Find(CKO_DATA, label_));
  SecretBytes seed(32);
  CK_ATTRIBUTE a = {CKA_VALUE, seed.data(), seed.size()};
  if (CK_RV rv = s.f->C_GetAttributeValue(s.session, obj, &a, 1); rv != CKR_OK) {
    return Ckr("C_GetAttributeValue(channel seed)", rv);
  }
  if (a.ulValueLen != seed.size()) return Corruption("the token's channel seed is not 32 bytes");
  return SigningKey::FromSeed(seed);
}

}  // namespace qv
