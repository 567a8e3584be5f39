#include "crypto/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "base/file_util.h"

namespace qv {

namespace {

constexpr std::string_view kPkPrefix = "ed25519:";
constexpr std::string_view kFileHeader = "quorumvault-ed25519-secret-key-v1\n";
constexpr size_t kSeedHex = 64;

}  // namespace

std::string PublicKeyToText(const PublicKey& pk) { return std::string(kPkPrefix) + HexEncode(pk); }

Result<PublicKey> PublicKeyFromText(std::string_view text) {
  if (text.substr(0, kPkPrefix.size()) == kPkPrefix) text.remove_prefix(kPkPrefix.size());
  auto pk = HexDecodeFixed<kPublicKeySize>(text, "Ed25519 public key");
  if (!pk.ok()) return pk.status();
  EnsureSodium();
  // Reject small-order and non-canonical encodings up front.
  unsigned char curve[crypto_scalarmult_curve25519_BYTES];
  if (crypto_sign_ed25519_pk_to_curve25519(curve, pk->data()) != 0) {
    return InvalidArgument("Ed25519 public key is not a valid curve point");
  }
  return *pk;
}

Result<std::unique_ptr<SigningKey>> SigningKey::FromSeed(const SecretBytes& seed) {
  EnsureSodium();
  if (seed.size() != crypto_sign_SEEDBYTES) return InvalidArgument("seed must be 32 bytes");
  SecretBytes sk(crypto_sign_SECRETKEYBYTES);
  PublicKey pk;
  if (crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data()) != 0) {
    return Internal("crypto_sign_seed_keypair failed");
  }
  return std::unique_ptr<SigningKey>(new SigningKey(std::move(sk), pk));
}

Result<std::unique_ptr<SigningKey>> SigningKey::Generate() {
  return FromSeed(SecretBytes::Random(crypto_sign_SEEDBYTES));
}

Result<std::unique_ptr<SigningKey>> SigningKey::Load(const std::filesystem::path& path) {
  auto opened = File::OpenPrivate(path, "key file");
  if (!opened.ok() && opened.status().code() == StatusCode::kPermissionDenied) {
    // Advice to chmod 600 fits a key file only: a readable file that is not
    // a key at all (a cluster file given as --key) is named as such. Its
    // first bytes are public anyway, since anyone may read it.
    std::ifstream in(path, std::ios::binary);
    std::string head(kFileHeader.size(), '\0');
    if (in && in.read(head.data(), head.size()) && head != kFileHeader) {
      return InvalidArgument(path.string() + " is not a quorumvault secret key file");
    }
  }
  QV_ASSIGN_OR_RETURN(auto file, std::move(opened));
  // Read into secure memory only: the seed never passes through the heap.
  SecretBytes buf(kFileHeader.size() + kSeedHex + 2);
  size_t got = 0;
  while (got < buf.size()) {
    QV_ASSIGN_OR_RETURN(size_t n, file->Read(buf.mutable_span().subspan(got)));
    if (n == 0) break;
    got += n;
  }
  const std::string bad = "key file " + path.string() + " is not a quorumvault secret key";
  if (got < kFileHeader.size() + kSeedHex ||
      std::memcmp(buf.data(), kFileHeader.data(), kFileHeader.size()) != 0) {
    return InvalidArgument(bad);
  }
  SecretBytes seed(crypto_sign_SEEDBYTES);
  size_t seed_len = 0;
  const char* hex = reinterpret_cast<const char*>(buf.data() + kFileHeader.size());
  if (sodium_hex2bin(seed.data(), seed.size(), hex, kSeedHex, nullptr, &seed_len, nullptr) != 0 ||
      seed_len != seed.size()) {
    return InvalidArgument(bad);
  }
  return FromSeed(seed);
}

Status SigningKey::Save(const std::filesystem::path& path) const {
  SecretBytes text(kFileHeader.size() + kSeedHex + 2);
  std::memcpy(text.data(), kFileHeader.data(), kFileHeader.size());
  sodium_bin2hex(reinterpret_cast<char*>(text.data() + kFileHeader.size()), kSeedHex + 1,
                 secret_.data(), crypto_sign_SEEDBYTES);
  text.data()[kFileHeader.size() + kSeedHex] = '\n';
  const size_t len = kFileHeader.size() + kSeedHex + 1;
  auto file = File::CreateNew(path, 0600);
  if (!file.ok()) return file.status().WithContext("writing key file");
  QV_RETURN_IF_ERROR((*file)->WriteAll(ByteSpan(text.data(), len)));
  QV_RETURN_IF_ERROR((*file)->Sync());
  auto parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  return SyncDir(parent);
}

Signature SigningKey::Sign(ByteSpan message) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
  return sig;
}

SecretBytes SigningKey::X25519Secret() const {
  SecretBytes out(crypto_scalarmult_curve25519_BYTES);
  crypto_sign_ed25519_sk_to_curve25519(out.data(), secret_.data());
  return out;
}

Result<std::array<uint8_t, 32>> X25519PublicFromEd25519(const PublicKey& pk) {
  EnsureSodium();
  std::array<uint8_t, 32> out;
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), pk.data()) != 0) {
    return InvalidArgument("Ed25519 public key has no X25519 form");
  }
  return out;
}

Status VerifySignature(const PublicKey& pk, ByteSpan message, const Signature& sig) {
  EnsureSodium();
  if (crypto_sign_verify_detached(sig.data(), message.data(), message.size(), pk.data()) != 0) {
    return Unauthenticated("signature does not verify under " + PublicKeyToText(pk));
  }
  return Status::Ok();
}

Bytes ContextMessage(std::string_view context, ByteSpan body) {
  Bytes m(context.begin(), context.end());
  m.push_back(0);
  m.insert(m.end(), body.begin(), body.end());
  return m;
}

}  // namespace qv
