#include "manifest/manifest.h"

#include <algorithm>
#include <boost/archive/archive_exception.hpp>
#include <boost/archive/text_iarchive.hpp>
#include <boost/archive/text_oarchive.hpp>
#include <boost/serialization/array.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <cctype>
#include <cstring>
#include <set>
#include <sstream>

#include "base/clock.h"
#include "base/text.h"
#include "base/wire.h"

// Version 2 bodies were Boost text archives, whose layout belongs to the
// Boost release that wrote them. They are still read (old backups restore),
// never written: version 3 bodies use the project's canonical codec.
namespace boost::serialization {

template <class Archive>
void serialize(Archive& ar, qv::FileEntry& f, const unsigned int) {
  ar& f.path& f.size& f.sha256;
}

template <class Archive>
void serialize(Archive& ar, qv::Placement& p, const unsigned int) {
  ar& p.fragment& p.node_id& p.site;
}

template <class Archive>
void serialize(Archive& ar, qv::Provenance& p, const unsigned int) {
  ar& p.parent_backup& p.source_path& p.creator& p.tool_version;
}

template <class Archive>
void serialize(Archive& ar, qv::Custodian& c, const unsigned int) {
  ar& c.id& c.public_key;
}

template <class Archive>
void serialize(Archive& ar, qv::Policy& p, const unsigned int) {
  ar& p.custodians& p.quorum& p.max_request_seconds& p.quorum_ops;
}

template <class Archive>
void serialize(Archive& ar, qv::Manifest& m, const unsigned int) {
  uint8_t cipher = static_cast<uint8_t>(m.cipher);
  ar& m.backup_id& m.artifact_name& m.files& m.plaintext_size& cipher& m.chunk_size;
  ar& m.k& m.m& m.t& m.unit_size& m.stripe_count& m.commitments& m.fragment_roots;
  ar& m.placement& m.created_unix& m.provenance& m.policy;
  m.cipher = static_cast<qv::CipherSuite>(cipher);
}

}  // namespace boost::serialization

namespace qv {

namespace {

constexpr char kMagic[4] = {'Q', 'V', 'M', 'F'};
constexpr std::string_view kSigContext{"quorumvault-manifest\0", 21};
constexpr size_t kHeaderSize = 4 + 4 + 8;
constexpr size_t kTrailerSize = kPublicKeySize + kSignatureSize;

constexpr uint32_t kBoostTextVersion = 2;
constexpr size_t kMaxText = 4096;

// Version 3 body: base/wire.h, fields in declaration order, every list a u32
// count then its items; the exact bytes are pinned by manifest_test.
Bytes EncodeBody(const Manifest& m) {
  WireWriter w;
  w.Fixed(m.backup_id).Str(m.artifact_name).U32(static_cast<uint32_t>(m.files.size()));
  for (const auto& f : m.files) w.Str(f.path).U64(f.size).Fixed(f.sha256);
  w.U64(m.plaintext_size).U8(static_cast<uint8_t>(m.cipher)).U32(m.chunk_size);
  w.U32(m.k).U32(m.m).U32(m.t).U32(m.unit_size).U64(m.stripe_count);
  w.U32(static_cast<uint32_t>(m.commitments.size()));
  for (const auto& c : m.commitments) w.Fixed(c);
  w.U32(static_cast<uint32_t>(m.fragment_roots.size()));
  for (const auto& r : m.fragment_roots) w.Fixed(r);
  w.U32(static_cast<uint32_t>(m.placement.size()));
  for (const auto& p : m.placement) w.U32(p.fragment).Str(p.node_id).Str(p.site);
  w.I64(m.created_unix);
  const Provenance& pv = m.provenance;
  w.Str(pv.parent_backup).Str(pv.source_path).Str(pv.creator).Str(pv.tool_version);
  w.U32(static_cast<uint32_t>(m.policy.custodians.size()));
  for (const auto& c : m.policy.custodians) w.Str(c.id).Fixed(c.public_key);
  w.U32(m.policy.quorum).U32(m.policy.max_request_seconds);
  w.U32(static_cast<uint32_t>(m.policy.quorum_ops.size()));
  for (const auto& op : m.policy.quorum_ops) w.Str(op);
  if (m.HasLabels()) {
    w.U32(m.revision).Fixed(m.previous).U32(static_cast<uint32_t>(m.tags.size()));
    for (const auto& t : m.tags) w.Str(t);
    w.U32(static_cast<uint32_t>(m.files.size()));
    for (const auto& f : m.files) w.I64(f.mtime_unix);
  } else if (m.revision > 0) {
    w.U32(m.revision).Fixed(m.previous);
  }
  return w.Take();
}

uint32_t FormatOf(const Manifest& m) {
  if (m.HasLabels()) return Manifest::kFormatVersion;
  return m.revision == 0 ? Manifest::kFirstRevisionFormat : Manifest::kRevisionFormat;
}

// A list's count, believed only as far as the bytes left could hold it.
Result<uint32_t> Count(WireReader& r, size_t min_item, std::string_view what) {
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > r.remaining() / min_item) {
    return Corruption("manifest " + std::string(what) + " count " + std::to_string(n) +
                      " exceeds the body");
  }
  return n;
}

Result<Manifest> DecodeBody(ByteSpan body, uint32_t version) {
  WireReader r(body);
  Manifest m;
  QV_ASSIGN_OR_RETURN(m.backup_id, r.Fixed<16>());
  QV_ASSIGN_OR_RETURN(m.artifact_name, r.Str(kMaxText));
  QV_ASSIGN_OR_RETURN(uint32_t files, Count(r, 4 + 8 + 32, "file"));
  m.files.resize(files);
  for (auto& f : m.files) {
    QV_ASSIGN_OR_RETURN(f.path, r.Str(kMaxText));
    QV_ASSIGN_OR_RETURN(f.size, r.U64());
    QV_ASSIGN_OR_RETURN(f.sha256, r.Fixed<32>());
  }
  QV_ASSIGN_OR_RETURN(m.plaintext_size, r.U64());
  QV_ASSIGN_OR_RETURN(uint8_t cipher, r.U8());
  m.cipher = static_cast<CipherSuite>(cipher);
  QV_ASSIGN_OR_RETURN(m.chunk_size, r.U32());
  QV_ASSIGN_OR_RETURN(m.k, r.U32());
  QV_ASSIGN_OR_RETURN(m.m, r.U32());
  QV_ASSIGN_OR_RETURN(m.t, r.U32());
  QV_ASSIGN_OR_RETURN(m.unit_size, r.U32());
  QV_ASSIGN_OR_RETURN(m.stripe_count, r.U64());
  QV_ASSIGN_OR_RETURN(uint32_t commitments, Count(r, kPointSize, "commitment"));
  m.commitments.resize(commitments);
  for (auto& c : m.commitments) {
    QV_ASSIGN_OR_RETURN(c, r.Fixed<kPointSize>());
  }
  QV_ASSIGN_OR_RETURN(uint32_t roots, Count(r, 32, "root"));
  m.fragment_roots.resize(roots);
  for (auto& d : m.fragment_roots) {
    QV_ASSIGN_OR_RETURN(d, r.Fixed<32>());
  }
  QV_ASSIGN_OR_RETURN(uint32_t placed, Count(r, 12, "placement"));
  m.placement.resize(placed);
  for (auto& p : m.placement) {
    QV_ASSIGN_OR_RETURN(p.fragment, r.U32());
    QV_ASSIGN_OR_RETURN(p.node_id, r.Str(kMaxText));
    QV_ASSIGN_OR_RETURN(p.site, r.Str(kMaxText));
  }
  QV_ASSIGN_OR_RETURN(m.created_unix, r.I64());
  QV_ASSIGN_OR_RETURN(m.provenance.parent_backup, r.Str(kMaxText));
  QV_ASSIGN_OR_RETURN(m.provenance.source_path, r.Str(kMaxText));
  QV_ASSIGN_OR_RETURN(m.provenance.creator, r.Str(kMaxText));
  QV_ASSIGN_OR_RETURN(m.provenance.tool_version, r.Str(kMaxText));
  QV_ASSIGN_OR_RETURN(uint32_t custodians, Count(r, 4 + 32, "custodian"));
  m.policy.custodians.resize(custodians);
  for (auto& c : m.policy.custodians) {
    QV_ASSIGN_OR_RETURN(c.id, r.Str(kMaxText));
    QV_ASSIGN_OR_RETURN(c.public_key, r.Fixed<32>());
  }
  QV_ASSIGN_OR_RETURN(m.policy.quorum, r.U32());
  QV_ASSIGN_OR_RETURN(m.policy.max_request_seconds, r.U32());
  QV_ASSIGN_OR_RETURN(uint32_t ops, Count(r, 4, "operation"));
  m.policy.quorum_ops.resize(ops);
  for (auto& op : m.policy.quorum_ops) {
    QV_ASSIGN_OR_RETURN(op, r.Str(kMaxText));
  }
  if (version >= 4) {
    QV_ASSIGN_OR_RETURN(m.revision, r.U32());
    QV_ASSIGN_OR_RETURN(m.previous, r.Fixed<32>());
    if (version == 4 && m.revision == 0) return Corruption("manifest format 4 with revision 0");
  }
  if (version >= 5) {
    QV_ASSIGN_OR_RETURN(uint32_t tags, Count(r, 4, "tag"));
    if (tags > Manifest::kMaxTags)
      return Corruption("manifest has " + std::to_string(tags) + " tags");
    m.tags.resize(tags);
    for (auto& t : m.tags) {
      QV_ASSIGN_OR_RETURN(t, r.Str(Manifest::kMaxTagBytes));
    }
    QV_ASSIGN_OR_RETURN(uint32_t times, Count(r, 8, "file time"));
    if (times != m.files.size()) return Corruption("manifest file times do not match its files");
    for (auto& f : m.files) {
      QV_ASSIGN_OR_RETURN(f.mtime_unix, r.I64());
    }
    // One encoding per manifest: format 5 only for what needs it.
    if (!m.HasLabels()) return Corruption("manifest format 5 without tags or file times");
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return m;
}

Bytes SignedBytes(uint32_t version, ByteSpan body) {
  Bytes msg(kSigContext.begin(), kSigContext.end());
  uint8_t v[4] = {uint8_t(version >> 24), uint8_t(version >> 16), uint8_t(version >> 8),
                  uint8_t(version)};
  msg.insert(msg.end(), v, v + 4);
  AppendBytes(msg, body);
  return msg;
}

}  // namespace

std::string BackupIdToText(const BackupId& id) { return HexEncode(id); }

Result<BackupId> BackupIdFromText(std::string_view text) {
  return HexDecodeFixed<16>(text, "backup id");
}

uint64_t StripeCountFor(uint64_t plaintext_size, uint32_t chunk_size) {
  if (chunk_size == 0) return 0;
  if (plaintext_size == 0) return 1;
  return (plaintext_size + chunk_size - 1) / chunk_size;
}

uint64_t Manifest::ChunkPlaintextSize(uint64_t i) const {
  if (i + 1 < stripe_count) return chunk_size;
  return plaintext_size - (stripe_count - 1) * uint64_t{chunk_size};
}

Status ValidateRelativePath(std::string_view path) {
  if (path.empty()) return InvalidArgument("empty file path");
  if (path.size() > 4096) return InvalidArgument("file path longer than 4096 bytes");
  if (path.front() == '/') return InvalidArgument("absolute file path '" + std::string(path) + "'");
  if (path.find('\0') != std::string_view::npos) return InvalidArgument("file path contains NUL");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgument("file path '" + std::string(path) +
                             "' has an empty, '.' or '..' component");
    }
    start = end + 1;
  }
  return Status::Ok();
}

namespace {

Status ValidateLabel(std::string_view what, std::string_view text, size_t max,
                     std::string_view punctuation) {
  if (text.empty() || text.size() > max) {
    return InvalidArgument(std::string(what) + " '" + Printable(text) + "' must be 1 to " +
                           std::to_string(max) + " bytes");
  }
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        punctuation.find(c) == std::string_view::npos) {
      std::string allowed;
      for (char p : punctuation) allowed += std::string(" ") + p;
      return InvalidArgument(std::string(what) + " '" + Printable(text) +
                             "' may hold only letters, digits and" + allowed);
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateTag(std::string_view tag) {
  return ValidateLabel("tag", tag, Manifest::kMaxTagBytes, "._:@+=-");
}

Status ValidateBackupName(std::string_view name) {
  return ValidateLabel("name", name, 128, "._:@+=/-");
}

bool Manifest::HasLabels() const {
  return !tags.empty() ||
         std::any_of(files.begin(), files.end(), [](const FileEntry& f) { return f.mtime_unix; });
}

Status Manifest::Validate() const {
  auto bad = [](const std::string& m) { return InvalidArgument("manifest: " + m); };
  if (k < 1 || k + m > 255) return bad("k=" + std::to_string(k) + " m=" + std::to_string(m));
  if (t < 1 || t > n())
    return bad("threshold t=" + std::to_string(t) + " with n=" + std::to_string(n()));
  if (cipher != CipherSuite::kChaCha20Poly1305 && cipher != CipherSuite::kAes256Gcm) {
    return bad("unknown cipher");
  }
  if (unit_size == 0 || unit_size > kMaxUnitSize || uint64_t{k} * unit_size <= kAeadTagSize ||
      uint64_t{k} * unit_size > (1ull << 31)) {
    return bad("unit size " + std::to_string(unit_size));
  }
  if (chunk_size != uint64_t{k} * unit_size - kAeadTagSize) return bad("chunk size mismatch");
  // 2^60 bytes (an exbibyte): far above any artifact, and far enough below
  // 2^64 that stripe and fragment sizes computed from it cannot overflow.
  if (plaintext_size > (uint64_t{1} << 60)) return bad("plaintext size out of range");
  if (stripe_count != StripeCountFor(plaintext_size, chunk_size)) return bad("stripe count");
  if (commitments.size() != t) return bad("expected " + std::to_string(t) + " commitments");
  // One share alone must never be the key: a backup that needs custodians
  // needs at least two shares, and no commitment may be the identity (the
  // mark of a forged, constant polynomial; crypto/vss.h).
  if (policy.custodial() && t < 2) return bad("threshold t=1 for a backup that needs custodians");
  for (size_t j = 0; j < commitments.size(); ++j) {
    if (std::all_of(commitments[j].begin(), commitments[j].end(), [](uint8_t b) { return b == 0; }))
      return bad("commitment " + std::to_string(j) + " is the identity");
  }
  if (!PlausibleUnix(created_unix)) return bad("creation time " + std::to_string(created_unix));
  if (fragment_roots.size() != n()) return bad("expected " + std::to_string(n()) + " roots");
  uint64_t total = 0;
  std::set<std::string> seen;
  for (const auto& f : files) {
    Status s = ValidateRelativePath(f.path);
    if (!s.ok()) return s.WithContext("manifest");
    if (!seen.insert(f.path).second) return bad("duplicate file " + f.path);
    if (f.size > plaintext_size - total) return bad("file sizes exceed the plaintext size");
    total += f.size;
  }
  if (total != plaintext_size) return bad("file sizes do not add up to the plaintext size");
  if (tags.size() > kMaxTags) return bad(std::to_string(tags.size()) + " tags");
  std::set<std::string> tagged;
  for (const auto& t : tags) {
    if (Status s = ValidateTag(t); !s.ok()) return s.WithContext("manifest");
    if (!tagged.insert(t).second) return bad("duplicate tag " + t);
  }
  for (const auto& p : placement) {
    if (p.fragment >= n()) return bad("placement for fragment " + std::to_string(p.fragment));
  }
  const bool named = std::any_of(previous.begin(), previous.end(), [](uint8_t b) { return b; });
  if ((revision > 0) != named)
    return bad("revision " + std::to_string(revision) + (named ? " names" : " does not name") +
               " a previous manifest");
  return policy.Validate();
}

bool Policy::NeedsQuorum(std::string_view op) const {
  // Restore and repair always do, whatever a policy lists.
  return op == kOpRestore || op == kOpRepair ||
         std::find(quorum_ops.begin(), quorum_ops.end(), op) != quorum_ops.end();
}

const Custodian* Policy::FindByKey(const PublicKey& key) const {
  for (const auto& c : custodians) {
    if (c.public_key == key) return &c;
  }
  return nullptr;
}

Status Policy::Validate() const {
  auto bad = [](const std::string& what) { return InvalidArgument("manifest policy: " + what); };
  if (custodians.empty()) {
    if (quorum != 0) return bad("a quorum without custodians");
    return Status::Ok();
  }
  if (quorum == 0 || quorum > custodians.size()) {
    return bad("quorum " + std::to_string(quorum) + " of " + std::to_string(custodians.size()) +
               " custodians");
  }
  if (max_request_seconds == 0) return bad("requests with no lifetime");
  for (size_t i = 0; i < custodians.size(); ++i) {
    if (custodians[i].id.empty() || custodians[i].id.size() > 128) return bad("custodian id");
    for (size_t j = 0; j < i; ++j) {
      if (custodians[i].id == custodians[j].id)
        return bad("custodian " + custodians[i].id + " twice");
      if (custodians[i].public_key == custodians[j].public_key) {
        return bad("custodians " + custodians[j].id + " and " + custodians[i].id + " share a key");
      }
    }
  }
  if (std::find(quorum_ops.begin(), quorum_ops.end(), kOpRestore) == quorum_ops.end()) {
    return bad("restore must need a quorum");
  }
  for (const auto& op : quorum_ops) {
    const auto& all = AllQuorumOps();
    if (std::find(all.begin(), all.end(), op) == all.end()) return bad("unknown operation " + op);
  }
  return Status::Ok();
}

Result<SignedManifest> SignedManifest::Sign(const Manifest& unsigned_manifest,
                                            const SigningKey& key) {
  Manifest manifest = unsigned_manifest;
  manifest.provenance.creator = PublicKeyToText(key.public_key());
  QV_RETURN_IF_ERROR(manifest.Validate());
  const Bytes body = EncodeBody(manifest);
  const uint32_t version = FormatOf(manifest);
  Signature sig = key.Sign(SignedBytes(version, body));

  SignedManifest out;
  out.manifest_ = std::move(manifest);
  out.signer_ = key.public_key();
  Bytes& e = out.encoded_;
  e.insert(e.end(), kMagic, kMagic + 4);
  uint8_t v[4] = {uint8_t(version >> 24), uint8_t(version >> 16), uint8_t(version >> 8),
                  uint8_t(version)};
  e.insert(e.end(), v, v + 4);
  AppendU64BE(e, body.size());
  AppendBytes(e, body);
  AppendBytes(e, out.signer_);
  AppendBytes(e, sig);
  return out;
}

Result<SignedManifest> SignedManifest::Parse(ByteSpan encoded, const PublicKey* expected_signer) {
  if (encoded.size() < kHeaderSize + kTrailerSize) {
    return Corruption("manifest is truncated (" + std::to_string(encoded.size()) + " bytes)");
  }
  if (std::memcmp(encoded.data(), kMagic, 4) != 0) return Corruption("not a quorumvault manifest");
  const uint32_t version = uint32_t{encoded[4]} << 24 | uint32_t{encoded[5]} << 16 |
                           uint32_t{encoded[6]} << 8 | encoded[7];
  if (version != Manifest::kFormatVersion && version != Manifest::kRevisionFormat &&
      version != Manifest::kFirstRevisionFormat && version != kBoostTextVersion) {
    return InvalidArgument("manifest format version " + std::to_string(version) +
                           " is not supported (this build reads versions " +
                           std::to_string(kBoostTextVersion) + " to " +
                           std::to_string(Manifest::kFormatVersion) + ")");
  }
  const uint64_t body_len = GetU64BE(encoded.data() + 8);
  if (body_len != encoded.size() - kHeaderSize - kTrailerSize) {
    return Corruption("manifest is truncated or has trailing bytes (body length " +
                      std::to_string(body_len) + ", file holds " +
                      std::to_string(encoded.size() - kHeaderSize - kTrailerSize) + ")");
  }
  ByteSpan body = encoded.subspan(kHeaderSize, body_len);
  SignedManifest out;
  std::memcpy(out.signer_.data(), encoded.data() + kHeaderSize + body_len, kPublicKeySize);
  Signature sig;
  std::memcpy(sig.data(), encoded.data() + kHeaderSize + body_len + kPublicKeySize, kSignatureSize);
  if (expected_signer != nullptr && *expected_signer != out.signer_) {
    return Unauthenticated("manifest is signed by " + PublicKeyToText(out.signer_) + ", expected " +
                           PublicKeyToText(*expected_signer));
  }
  Status s = VerifySignature(out.signer_, SignedBytes(version, body), sig);
  if (!s.ok()) return Unauthenticated("manifest signature is invalid: " + s.message());
  if (version != kBoostTextVersion) {
    auto m = DecodeBody(body, version);
    if (!m.ok()) return m.status().WithContext("manifest body does not parse");
    out.manifest_ = std::move(m).value();
  } else {
    try {
      std::istringstream is(std::string(reinterpret_cast<const char*>(body.data()), body.size()));
      boost::archive::text_iarchive ar(is);
      ar >> out.manifest_;
    } catch (const std::exception& e) {
      // Signed but unreadable: a writer bug or an incompatible Boost archive.
      return Corruption(std::string("manifest body does not parse: ") + e.what());
    }
  }
  QV_RETURN_IF_ERROR(out.manifest_.Validate());
  if (PublicKeyToText(out.signer_) != out.manifest_.provenance.creator) {
    return Unauthenticated("manifest creator field does not name its signer");
  }
  out.encoded_.assign(encoded.begin(), encoded.end());
  return out;
}

Status CheckSuccessor(const SignedManifest& current, const SignedManifest& next,
                      std::vector<uint32_t>* moved) {
  const Manifest& a = current.manifest();
  const Manifest& b = next.manifest();
  auto refuse = [&](const std::string& why) {
    return PermissionDenied("manifest revision " + std::to_string(b.revision) +
                            " does not follow revision " + std::to_string(a.revision) + ": " + why);
  };
  if (b.revision != a.revision + 1) return refuse("not the next revision");
  if (b.previous != current.Hash()) return refuse("it names another previous manifest");
  if (next.signer() != current.signer()) return refuse("signed by another key");
  // Everything but the placement, compared as the signed bytes encode it.
  Manifest x = a, y = b;
  x.placement.clear();
  y.placement.clear();
  x.revision = y.revision = 0;
  x.previous = y.previous = Digest{};
  if (EncodeBody(x) != EncodeBody(y)) return refuse("it changes more than the placement");
  std::vector<const Placement*> was(a.n(), nullptr), now(a.n(), nullptr);
  for (const auto& p : a.placement) was[p.fragment] = &p;
  std::set<std::string> holders;
  for (const auto& p : b.placement) {
    if (now[p.fragment] != nullptr) {
      return refuse("fragment " + std::to_string(p.fragment) + " placed twice");
    }
    if (!holders.insert(p.node_id).second) {
      return refuse(p.node_id + " would hold two fragments");
    }
    now[p.fragment] = &p;
  }
  for (uint32_t f = 0; f < a.n(); ++f) {
    if ((was[f] == nullptr) != (now[f] == nullptr)) {
      return refuse("fragment " + std::to_string(f) + " placed in one and not the other");
    }
    if (was[f] != nullptr && (was[f]->node_id != now[f]->node_id || was[f]->site != now[f]->site) &&
        moved != nullptr) {
      moved->push_back(f);
    }
  }
  return Status::Ok();
}

}  // namespace qv
