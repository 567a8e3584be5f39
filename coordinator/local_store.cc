#include "coordinator/local_store.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "base/file_util.h"
#include "crypto/secretbox.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxLeavesFile = 1ull << 30;

std::string ShareContext(const BackupId& id, uint32_t x) {
  return "share:" + BackupIdToText(id) + ":" + std::to_string(x);
}

// The node master key is created on first use; a group/world-readable key
// file is refused like any secret key.
Result<SecretBytes> LoadOrCreateNodeKey(const fs::path& node_dir) {
  fs::path p = node_dir / "node.key";
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    fs::create_directories(node_dir, ec);
    if (ec) return IoError(node_dir.string() + ": " + ec.message());
    SecretBytes key = SecretBytes::Random(kSecretBoxKeySize);
    Status s = WriteFileAtomic(p, key.span(), 0600);
    if (!s.ok()) return s;
    return key;
  }
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return ErrnoError(p.string());
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(p.string() + " is readable by group or others (chmod 600)");
  }
  QV_ASSIGN_OR_RETURN(auto f, File::OpenRead(p));
  SecretBytes key(kSecretBoxKeySize);
  QV_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size != kSecretBoxKeySize) return Corruption(p.string() + ": not a 32-byte node key");
  QV_RETURN_IF_ERROR(f->PReadExact(key.mutable_span(), 0));
  return key;
}

class LocalSink : public FragmentSink {
 public:
  LocalSink(fs::path node_dir, Placement placement, BackupId id)
      : node_dir_(std::move(node_dir)), placement_(std::move(placement)), id_(id) {}
  ~LocalSink() override {
    if (!published_) Abort();
  }

  Status Init() {
    fs::path backups = node_dir_ / "backups";
    std::error_code ec;
    fs::create_directories(backups, ec);
    if (ec) return IoError(backups.string() + ": " + ec.message());
    final_ = backups / BackupIdToText(id_);
    if (fs::exists(final_, ec)) return AlreadyExists(final_.string());
    staging_ = backups / ("." + BackupIdToText(id_) + ".partial-" + RandomTag());
    if (!fs::create_directory(staging_, ec) || ec) return IoError(staging_.string());
    QV_ASSIGN_OR_RETURN(fragment_, File::CreateNew(staging_ / "fragment", 0600));
    return Status::Ok();
  }

  const Placement& placement() const override { return placement_; }
  Status Append(ByteSpan unit) override { return fragment_->WriteAll(unit); }

  Status Prepare(const std::vector<Digest>& leaves, const Share& share,
                 const SignedManifest& manifest, int64_t /*deadline*/) override {
    QV_RETURN_IF_ERROR(fragment_->Sync());
    fragment_.reset();
    Bytes leaf_bytes;
    leaf_bytes.reserve(leaves.size() * 32);
    for (const auto& d : leaves) AppendBytes(leaf_bytes, d);
    QV_RETURN_IF_ERROR(WriteFileAtomic(staging_ / "leaves", leaf_bytes, 0600));
    QV_ASSIGN_OR_RETURN(SecretBytes key, LoadOrCreateNodeKey(node_dir_));
    SecretBytes plain = EncodeShare(share);
    QV_ASSIGN_OR_RETURN(Bytes sealed, SealSecret(key, ShareContext(id_, share.x), plain));
    QV_RETURN_IF_ERROR(WriteFileAtomic(staging_ / "share.sealed", sealed, 0600));
    QV_RETURN_IF_ERROR(WriteFileAtomic(staging_ / "manifest", manifest.encoded(), 0644));
    return SyncDir(staging_);
  }

  Status Publish(const CommitRecord& /*record*/) override {
    if (::rename(staging_.c_str(), final_.c_str()) != 0) {
      return ErrnoError("publish " + final_.string());
    }
    published_ = true;
    return SyncDir(final_.parent_path());
  }

  void Abort() override {
    fragment_.reset();
    if (!published_ && !staging_.empty()) RemoveAllQuietly(staging_);
  }

 private:
  fs::path node_dir_;
  Placement placement_;
  BackupId id_;
  fs::path staging_, final_;
  std::unique_ptr<File> fragment_;
  bool published_ = false;
};

class LocalSource : public FragmentSource {
 public:
  LocalSource(std::string name, uint32_t fragment, fs::path dir, std::unique_ptr<File> file,
              uint64_t unit_size)
      : name_(std::move(name)),
        fragment_(fragment),
        dir_(std::move(dir)),
        file_(std::move(file)),
        unit_size_(unit_size) {}

  const std::string& name() const override { return name_; }
  uint32_t fragment() const override { return fragment_; }

  Result<std::vector<Digest>> ReadLeaves() override {
    QV_ASSIGN_OR_RETURN(Bytes b, ReadFileBytes(dir_ / "leaves", kMaxLeavesFile));
    if (b.size() % 32 != 0) return Corruption("leaves file is not a whole number of hashes");
    std::vector<Digest> out(b.size() / 32);
    for (size_t i = 0; i < out.size(); ++i) std::memcpy(out[i].data(), b.data() + 32 * i, 32);
    return out;
  }

  Result<UnitView> ViewUnit(uint64_t stripe, MutableByteSpan scratch) const override {
    QV_RETURN_IF_ERROR(file_->PReadExact(scratch, stripe * unit_size_));
    return UnitView{scratch, nullptr};
  }

 private:
  std::string name_;
  uint32_t fragment_;
  fs::path dir_;
  std::unique_ptr<File> file_;
  uint64_t unit_size_;
};

}  // namespace

std::string LocalStore::NodeName(uint32_t fragment) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "node-%02u", fragment);
  return buf;
}

Result<std::unique_ptr<LocalStore>> LocalStore::Open(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir.string() + ": " + ec.message());
  if (!fs::is_directory(dir, ec)) return InvalidArgument(dir.string() + ": not a folder");
  return std::unique_ptr<LocalStore>(new LocalStore(dir));
}

Result<std::vector<std::unique_ptr<FragmentSink>>> LocalStore::OpenSinks(const BackupId& id,
                                                                         uint32_t n, uint32_t,
                                                                         uint64_t) {
  std::vector<std::unique_ptr<FragmentSink>> sinks;
  for (uint32_t f = 0; f < n; ++f) {
    Placement p{f, NodeName(f), "local"};
    auto sink = std::make_unique<LocalSink>(dir_ / p.node_id, p, id);
    QV_RETURN_IF_ERROR(sink->Init().WithContext(p.node_id));
    // The node key must exist before any data lands so Prepare cannot fail on it.
    auto key = LoadOrCreateNodeKey(dir_ / p.node_id);
    if (!key.ok()) return key.status().WithContext(p.node_id);
    sinks.push_back(std::move(sink));
  }
  return sinks;
}

Result<SignedManifest> LocalStore::LoadManifest(const BackupId& id,
                                                const PublicKey* expected_signer,
                                                std::vector<std::string>* problems) const {
  std::optional<SignedManifest> chosen;
  std::error_code ec;
  std::vector<fs::path> nodes;
  for (auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.is_directory() && e.path().filename().string().rfind("node-", 0) == 0) {
      nodes.push_back(e.path());
    }
  }
  std::sort(nodes.begin(), nodes.end());
  for (const auto& node : nodes) {
    fs::path p = node / "backups" / BackupIdToText(id) / "manifest";
    if (!fs::exists(p, ec)) continue;
    auto bytes = ReadFileBytes(p, kMaxManifestSize);
    auto parsed = bytes.ok() ? SignedManifest::Parse(*bytes, expected_signer)
                             : Result<SignedManifest>(bytes.status());
    if (!parsed.ok()) {
      problems->push_back(node.filename().string() +
                          ": manifest rejected: " + parsed.status().message());
      continue;
    }
    if (parsed->manifest().backup_id != id) {
      problems->push_back(node.filename().string() + ": manifest is for another backup");
      continue;
    }
    if (!chosen) {
      chosen = std::move(parsed).value();
    } else if (chosen->encoded() != parsed->encoded()) {
      return Unauthenticated("nodes hold different validly signed manifests for backup " +
                             BackupIdToText(id) + " (" + node.filename().string() + " differs)");
    }
  }
  if (!chosen) {
    std::string why;
    for (const auto& p : *problems) why += "; " + p;
    return NotFound("no valid manifest for backup " + BackupIdToText(id) + " in " + dir_.string() +
                    why);
  }
  return std::move(*chosen);
}

std::vector<std::unique_ptr<FragmentSource>> LocalStore::OpenSources(
    const SignedManifest& sm, std::vector<std::string>* problems) const {
  const Manifest& m = sm.manifest();
  std::vector<std::unique_ptr<FragmentSource>> out;
  for (const auto& p : m.placement) {
    fs::path dir = dir_ / p.node_id / "backups" / BackupIdToText(m.backup_id);
    auto f = File::OpenRead(dir / "fragment");
    if (!f.ok()) {
      problems->push_back(p.node_id + ": fragment " + std::to_string(p.fragment) + " missing (" +
                          f.status().message() + ")");
      continue;
    }
    out.push_back(std::make_unique<LocalSource>(p.node_id, p.fragment, dir, std::move(f).value(),
                                                m.unit_size));
  }
  return out;
}

std::vector<NamedShare> LocalStore::ReadShares(const SignedManifest& sm,
                                               std::vector<std::string>* problems) const {
  const Manifest& m = sm.manifest();
  std::vector<NamedShare> out;
  for (const auto& p : m.placement) {
    fs::path node = dir_ / p.node_id;
    fs::path file = node / "backups" / BackupIdToText(m.backup_id) / "share.sealed";
    auto sealed = ReadFileBytes(file, 4096);
    if (!sealed.ok()) {
      problems->push_back(p.node_id + ": share missing (" + sealed.status().message() + ")");
      continue;
    }
    auto key = LoadOrCreateNodeKey(node);
    const uint32_t x = p.fragment + 1;
    auto plain = key.ok() ? OpenSecret(*key, ShareContext(m.backup_id, x), *sealed)
                          : Result<SecretBytes>(key.status());
    auto share = plain.ok() ? DecodeShare(plain->span()) : Result<Share>(plain.status());
    if (!share.ok()) {
      problems->push_back(p.node_id + ": share unreadable (" + share.status().message() + ")");
      continue;
    }
    Share s = std::move(share).value();
    out.push_back(NamedShare{p.node_id, std::move(s)});
  }
  return out;
}

std::vector<BackupId> LocalStore::ListBackups() const {
  std::set<BackupId> ids;
  std::error_code ec;
  for (auto& node : fs::directory_iterator(dir_, ec)) {
    for (auto& b : fs::directory_iterator(node.path() / "backups", ec)) {
      auto id = BackupIdFromText(b.path().filename().string());
      if (id.ok()) ids.insert(*id);
    }
  }
  return {ids.begin(), ids.end()};
}

}  // namespace qv
