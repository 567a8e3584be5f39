#include "coordinator/pipeline.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "base/crash_point.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/sha256.h"
#include "crypto/vss.h"
#include "erasure/reed_solomon.h"

namespace qv {

namespace {

using Steady = std::chrono::steady_clock;

int WorkerCount(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 2 : static_cast<int>(hw);
}

// Enough stripes in flight to keep every thread busy while the serial
// stages wait their turn; about 2.5 MiB each at the default geometry.
size_t Depth(int threads) { return 2 * static_cast<size_t>(threads) + 2; }

// A stripe in flight: its plaintext chunk and its n units.
struct StripeBuf {
  uint64_t index = 0;
  size_t plain_len = 0;
  Bytes plain;
  Bytes units;
  std::vector<Digest> leaves;
};

// Runs `count` stripes through three stages on exactly `threads` threads:
//   produce(i)  serial, in stripe order (read and hash files / claim index)
//   transform   parallel, any order (encrypt, encode, hash / verify, decrypt)
//   consume     serial, in stripe order (hand units to sinks / write files)
// One thread per core and no dedicated stage threads: whichever thread is
// free takes the serial stage when it is runnable, so a serial stage is never
// preempted by its own helpers and no core idles while work is ready. At most
// `depth` stripes are in flight, which bounds memory. The first error stops
// everything and is returned. Plaintext buffers are reused stripe after
// stripe and wiped once, when the scheduler is destroyed.
class StripeScheduler {
 public:
  using Stage = std::function<Status(StripeBuf&)>;

  StripeScheduler(uint64_t count, int threads, size_t depth, size_t plain_size, size_t units_size,
                  size_t n)
      : count_(count), threads_(threads) {
    for (size_t i = 0; i < depth; ++i) {
      auto b = std::make_unique<StripeBuf>();
      b->plain.resize(plain_size);
      b->units.resize(units_size);
      b->leaves.resize(n);
      free_.push_back(b.get());
      owned_.push_back(std::move(b));
    }
  }

  ~StripeScheduler() {
    for (auto& b : owned_) sodium_memzero(b->plain.data(), b->plain.size());
  }

  Status Run(const Stage& produce, const Stage& transform, const Stage& consume) {
    std::vector<std::thread> helpers;
    for (int t = 1; t < threads_; ++t)
      helpers.emplace_back([&] { Loop(produce, transform, consume); });
    Loop(produce, transform, consume);
    for (auto& h : helpers) h.join();
    return error_;
  }

 private:
  void Loop(const Stage& produce, const Stage& transform, const Stage& consume) {
    std::unique_lock<std::mutex> lock(mu_);
    while (error_.ok() && consumed_ < count_) {
      StripeBuf* b = nullptr;
      Status st;
      auto done_it = done_.find(consumed_);
      if (!consuming_ && done_it != done_.end()) {
        b = done_it->second;
        done_.erase(done_it);
        consuming_ = true;
        lock.unlock();
        st = consume(*b);
        lock.lock();
        consuming_ = false;
        ++consumed_;
        free_.push_back(b);
      } else if (!producing_ && produced_ < count_ && !free_.empty() &&
                 (ready_.size() < static_cast<size_t>(threads_) || ready_.empty())) {
        b = free_.back();
        free_.pop_back();
        b->index = produced_;
        producing_ = true;
        lock.unlock();
        st = produce(*b);
        lock.lock();
        producing_ = false;
        ++produced_;
        ready_.push_back(b);
      } else if (!ready_.empty()) {
        b = ready_.front();
        ready_.pop_front();
        lock.unlock();
        st = transform(*b);
        lock.lock();
        done_[b->index] = b;
      } else {
        cv_.wait(lock);
        continue;
      }
      if (!st.ok() && error_.ok()) error_ = st;
      cv_.notify_all();
    }
    cv_.notify_all();
  }

  const uint64_t count_;
  const int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<StripeBuf>> owned_;
  std::vector<StripeBuf*> free_;
  std::deque<StripeBuf*> ready_;
  std::map<uint64_t, StripeBuf*> done_;
  uint64_t produced_ = 0, consumed_ = 0;
  bool producing_ = false, consuming_ = false;
  Status error_;
};

// Streams the artifact's files as one plaintext, hashing each file, and
// checking that no file changed size while it was read.
class ArtifactStreamer {
 public:
  explicit ArtifactStreamer(const Artifact& a) : a_(a), digests_(a.files.size()) {}

  Status Fill(uint8_t* out, size_t need) {
    size_t filled = 0;
    while (filled < need) {
      QV_RETURN_IF_ERROR(SkipFinished());
      if (file_ >= a_.files.size()) return Internal("artifact ended before its declared size");
      const SourceFile& f = a_.files[file_];
      size_t want = static_cast<size_t>(std::min<uint64_t>(need - filled, f.size - offset_));
      QV_ASSIGN_OR_RETURN(size_t got, reader_->Read(MutableByteSpan(out + filled, want)));
      if (got == 0) {
        return FailedPrecondition(f.path + ": file shrank while it was being backed up (" +
                                  std::to_string(offset_) + " of " + std::to_string(f.size) +
                                  " bytes); nothing was stored");
      }
      sha_.Update(ByteSpan(out + filled, got));
      offset_ += got;
      filled += got;
    }
    return Status::Ok();
  }

  // Completes trailing files (empty ones included) once all bytes are read.
  Status Finish() {
    QV_RETURN_IF_ERROR(SkipFinished());
    if (file_ != a_.files.size()) return Internal("artifact has unread bytes");
    return Status::Ok();
  }

  const std::vector<Digest>& digests() const { return digests_; }

 private:
  // Closes every file whose bytes are all read and opens the next one.
  Status SkipFinished() {
    while (file_ < a_.files.size()) {
      const SourceFile& f = a_.files[file_];
      if (!reader_) {
        auto r = f.open();
        if (!r.ok()) return r.status().WithContext(f.path);
        reader_ = std::move(r).value();
        offset_ = 0;
      }
      if (offset_ < f.size) return Status::Ok();
      uint8_t probe;
      QV_ASSIGN_OR_RETURN(size_t extra, reader_->Read(MutableByteSpan(&probe, 1)));
      if (extra != 0) {
        return FailedPrecondition(f.path +
                                  ": file grew while it was being backed up; nothing "
                                  "was stored");
      }
      digests_[file_] = sha_.Finish();
      reader_.reset();
      ++file_;
    }
    return Status::Ok();
  }

  const Artifact& a_;
  size_t file_ = 0;
  uint64_t offset_ = 0;
  std::unique_ptr<ByteReader> reader_;
  Sha256 sha_;
  std::vector<Digest> digests_;
};

}  // namespace

SecretBytes DataKey(const SecretBytes& secret, const BackupId& id, CipherSuite cipher) {
  Bytes ctx(id.begin(), id.end());
  ctx.push_back(static_cast<uint8_t>(cipher));
  return DeriveKey(secret, kDataKeyLabel, ctx);
}

uint32_t ChooseUnitSize(uint64_t plaintext_size, uint32_t k, uint32_t max_unit_size) {
  const uint64_t ct = plaintext_size + kAeadTagSize;
  uint64_t per = (ct + k - 1) / k;
  per = (per + 63) / 64 * 64;
  return static_cast<uint32_t>(std::clamp<uint64_t>(per, 64, max_unit_size));
}

Result<BackupOutcome> RunBackup(const Artifact& artifact, BackupTarget& target,
                                const SigningKey& signer, const BackupOptions& opt) {
  const auto start = Steady::now();
  const uint32_t n = opt.k + opt.m;
  if (opt.max_unit_size < 64 || opt.max_unit_size % 64 != 0 || opt.max_unit_size > kMaxUnitSize ||
      uint64_t{opt.k} * opt.max_unit_size > (1u << 30)) {
    return InvalidArgument("stripe unit " + std::to_string(opt.max_unit_size) +
                           " must be a multiple of 64, at most 16 MiB, and k * unit at most 1 GiB");
  }
  if (opt.clock == nullptr) return InvalidArgument("backup options need a clock");
  QV_ASSIGN_OR_RETURN(auto rs, ReedSolomon::New(static_cast<int>(opt.k), static_cast<int>(opt.m)));
  QV_ASSIGN_OR_RETURN(auto dealing, Deal(opt.t, n));
  // Everything that would make the manifest unsignable or untransportable
  // is refused now, before a byte is uploaded: bad paths, and a file list
  // whose manifest would exceed kMaxManifestSize (each file costs its path
  // and 44 bytes; the rest of the manifest is at most a few KiB per node).
  uint64_t manifest_bytes = 65536 + artifact.name.size() + artifact.source_path.size();
  for (const auto& f : artifact.files) {
    QV_RETURN_IF_ERROR(ValidateRelativePath(f.path));
    manifest_bytes += 44 + f.path.size();
  }
  manifest_bytes += uint64_t{n} * (64 + 4096);
  if (manifest_bytes > kMaxManifestSize) {
    return InvalidArgument(
        std::to_string(artifact.files.size()) + " files make a manifest of about " +
        std::to_string(manifest_bytes >> 20) + " MiB, over the " +
        std::to_string(kMaxManifestSize >> 20) + " MiB limit; back up the folders separately");
  }

  Manifest m;
  randombytes_buf(m.backup_id.data(), m.backup_id.size());
  m.plaintext_size = artifact.TotalSize();
  m.k = opt.k;
  m.unit_size = ChooseUnitSize(m.plaintext_size, opt.k, opt.max_unit_size);
  m.chunk_size = static_cast<uint32_t>(uint64_t{m.k} * m.unit_size - kAeadTagSize);
  m.stripe_count = StripeCountFor(m.plaintext_size, m.chunk_size);
  QV_ASSIGN_OR_RETURN(auto sinks, target.OpenSinks(m.backup_id, n, m.unit_size, m.stripe_count));
  auto abort_all = [&] {
    for (const auto& s : sinks) s->Abort();
  };
  if (sinks.size() != n) {
    abort_all();
    return Internal("target opened " + std::to_string(sinks.size()) + " sinks for " +
                    std::to_string(n) + " fragments");
  }
  m.artifact_name = opt.name.empty() ? artifact.name : opt.name;
  m.tags = opt.tags;
  m.policy = opt.policy;
  m.cipher = opt.cipher;
  m.m = opt.m;
  m.t = opt.t;
  m.commitments = dealing.commitments;
  m.created_unix = opt.clock->NowUnix();
  m.provenance.parent_backup = opt.parent_backup;
  m.provenance.source_path = artifact.source_path;
  m.provenance.tool_version = opt.tool_version;
  for (const auto& s : sinks) m.placement.push_back(s->placement());
  for (const auto& f : artifact.files) {
    m.files.push_back(
        FileEntry{f.path, f.size, {}, PlausibleUnix(f.mtime_unix) ? f.mtime_unix : 0});
  }

  std::unique_ptr<ChunkCipher> cipher;
  {
    // The secret and data key live only in this scope and the cipher object.
    SecretBytes key = DataKey(dealing.secret, m.backup_id, m.cipher);
    dealing.secret = SecretBytes();
    auto c = ChunkCipher::New(m.cipher, key, m.backup_id);
    if (!c.ok()) {
      abort_all();
      return c.status();
    }
    cipher = std::move(c).value();
  }

  const int threads = WorkerCount(opt.workers);
  const size_t U = m.unit_size;
  ArtifactStreamer streamer(artifact);
  std::vector<std::vector<Digest>> leaves(n);
  for (auto& l : leaves) l.reserve(m.stripe_count);
  uint64_t written = 0;

  auto read = [&](StripeBuf& s) -> Status {
    s.plain_len = m.ChunkPlaintextSize(s.index);
    QV_RETURN_IF_ERROR(streamer.Fill(s.plain.data(), s.plain_len));
    if (s.index + 1 == m.stripe_count) return streamer.Finish();
    return Status::Ok();
  };
  auto encode = [&](StripeBuf& s) -> Status {
    uint8_t* units = s.units.data();
    const bool final = s.index + 1 == m.stripe_count;
    QV_RETURN_IF_ERROR(cipher->Seal(s.index, final, ByteSpan(s.plain.data(), s.plain_len), units));
    const size_t ct = s.plain_len + kAeadTagSize;
    std::memset(units + ct, 0, m.k * U - ct);
    std::vector<const uint8_t*> data(m.k);
    std::vector<uint8_t*> parity(m.m);
    for (uint32_t j = 0; j < m.k; ++j) data[j] = units + j * U;
    for (uint32_t j = 0; j < m.m; ++j) parity[j] = units + (m.k + j) * U;
    rs->Encode(U, data, parity);
    for (uint32_t f = 0; f < n; ++f) s.leaves[f] = MerkleLeafHash(ByteSpan(units + f * U, U));
    return Status::Ok();
  };
  auto send = [&](StripeBuf& s) -> Status {
    for (uint32_t f = 0; f < n; ++f) {
      Status st = sinks[f]->Append(ByteSpan(s.units.data() + f * U, U));
      if (!st.ok()) return st.WithContext(sinks[f]->placement().node_id);
      leaves[f].push_back(s.leaves[f]);
    }
    written += s.plain_len;
    if (opt.progress) opt.progress(written, m.plaintext_size);
    return Status::Ok();
  };
  Status run = StripeScheduler(m.stripe_count, threads, Depth(threads), m.chunk_size, n * U, n)
                   .Run(read, encode, send);
  cipher.reset();
  if (!run.ok()) {
    abort_all();
    return run;
  }

  for (size_t i = 0; i < m.files.size(); ++i) m.files[i].sha256 = streamer.digests()[i];
  for (uint32_t f = 0; f < n; ++f) m.fragment_roots.push_back(MerkleRoot(leaves[f]));
  auto signed_manifest = SignedManifest::Sign(m, signer);
  if (!signed_manifest.ok()) {
    abort_all();
    return signed_manifest.status();
  }
  // Two-phase commit with a signed decision (manifest/commit_record.h):
  // everything durable everywhere, then the commit record to every node.
  const int64_t deadline = opt.clock->NowUnix() + opt.commit_window_seconds;
  for (uint32_t f = 0; f < n; ++f) {
    Status st = sinks[f]->Prepare(leaves[f], dealing.shares[f], *signed_manifest, deadline);
    if (!st.ok()) {
      abort_all();
      return st.WithContext(sinks[f]->placement().node_id);
    }
    CrashPoint("coordinator:prepared-" + std::to_string(f + 1));
  }
  dealing.shares.clear();
  const int64_t decided = opt.clock->NowUnix();
  if (decided > deadline) {
    abort_all();
    return FailedPrecondition("preparing took longer than the " +
                              std::to_string(opt.commit_window_seconds) +
                              " s commit window; nothing was committed");
  }
  CrashPoint("coordinator:before-publish");
  // From here on the decision is commit and nothing is aborted: a node that
  // does not confirm takes the record from a peer that has it.
  const CommitRecord record =
      CommitRecord::Sign(signer, m.backup_id, signed_manifest->Hash(), deadline, decided);
  std::vector<std::string> unconfirmed;
  uint32_t confirmed = 0;
  for (uint32_t f = 0; f < n; ++f) {
    Status st = sinks[f]->Publish(record);
    if (st.ok()) {
      ++confirmed;
      CrashPoint("coordinator:published-" + std::to_string(confirmed));
    } else {
      unconfirmed.push_back(sinks[f]->placement().node_id + ": " + st.message() +
                            " (it takes the commit from its peers)");
    }
  }
  if (confirmed == 0) {
    std::string why;
    for (const auto& u : unconfirmed) why += "\n  " + u;
    return FailedPrecondition(
        "no node confirmed the commit; the nodes settle it among themselves (committed if any "
        "holds the record, else removed after the deadline):" +
        why);
  }
  BackupOutcome out{std::move(signed_manifest).value(), m.plaintext_size,
                    uint64_t{n} * U * m.stripe_count, 0, std::move(unconfirmed)};
  out.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  return out;
}

namespace {

// Writes restored plaintext into files in manifest order, hashing each.
class FileSplitter {
 public:
  FileSplitter(const Manifest& m, ArtifactWriter& w) : m_(m), w_(w) {}

  Status Write(ByteSpan data) {
    while (true) {
      QV_RETURN_IF_ERROR(CloseFinished());
      if (data.empty()) return Status::Ok();
      if (file_ >= m_.files.size()) return Corruption("restored stream is longer than its files");
      const FileEntry& f = m_.files[file_];
      size_t take = static_cast<size_t>(std::min<uint64_t>(data.size(), f.size - offset_));
      QV_RETURN_IF_ERROR(w_.Write(data.first(take)));
      sha_.Update(data.first(take));
      offset_ += take;
      data = data.subspan(take);
    }
  }

  Status Finish() {
    QV_RETURN_IF_ERROR(CloseFinished());
    if (file_ != m_.files.size()) return Corruption("restored stream is shorter than its files");
    return Status::Ok();
  }

 private:
  // Ends files whose bytes are all written (checking their digest) and
  // begins the next one, so empty files are created too.
  Status CloseFinished() {
    while (file_ < m_.files.size()) {
      const FileEntry& f = m_.files[file_];
      if (!open_) {
        QV_RETURN_IF_ERROR(w_.BeginFile(f).WithContext(f.path));
        open_ = true;
        offset_ = 0;
      }
      if (offset_ < f.size) return Status::Ok();
      QV_RETURN_IF_ERROR(w_.EndFile().WithContext(f.path));
      if (sha_.Finish() != f.sha256) {
        return Corruption(f.path + ": restored bytes do not match the SHA-256 in the manifest");
      }
      open_ = false;
      ++file_;
    }
    return Status::Ok();
  }

  const Manifest& m_;
  ArtifactWriter& w_;
  size_t file_ = 0;
  uint64_t offset_ = 0;
  bool open_ = false;
  Sha256 sha_;
};

}  // namespace

Result<RestoreReport> RunRestore(const SignedManifest& sm,
                                 std::vector<std::unique_ptr<FragmentSource>> sources,
                                 std::vector<NamedShare> shares, ArtifactWriter& writer,
                                 const RestoreOptions& opt) {
  const auto start = Steady::now();
  const Manifest& m = sm.manifest();
  const uint32_t n = m.n();
  RestoreReport report;
  auto fail_early = [&](Status s) -> Result<RestoreReport> {
    writer.Abort();
    std::string why;
    for (const auto& p : report.problems) why += "; " + p;
    return Status(s.code(), s.message() + why);
  };

  // Shares: check each against the commitments, keep one good share per x.
  std::vector<Share> good;
  std::vector<bool> have_x(n + 1, false);
  for (auto& ns : shares) {
    Status st = VerifyShare(ns.share, m.commitments);
    if (!st.ok()) {
      report.problems.push_back(ns.source + ": share rejected: " + st.message());
      continue;
    }
    if (ns.share.x > n || have_x[ns.share.x]) continue;
    have_x[ns.share.x] = true;
    good.push_back(std::move(ns.share));
  }
  shares.clear();
  if (good.size() < m.t) {
    return fail_early(FailedPrecondition("need " + std::to_string(m.t) +
                                         " valid key shares, have " + std::to_string(good.size())));
  }
  std::unique_ptr<ChunkCipher> cipher;
  {
    auto rec = Combine(good, m.commitments);
    good.clear();
    if (!rec.ok()) return fail_early(rec.status());
    SecretBytes key = DataKey(rec->secret, m.backup_id, m.cipher);
    auto c = ChunkCipher::New(m.cipher, key, m.backup_id);
    if (!c.ok()) return fail_early(c.status());
    cipher = std::move(c).value();
  }
  auto rs_or = ReedSolomon::New(static_cast<int>(m.k), static_cast<int>(m.m));
  if (!rs_or.ok()) return fail_early(rs_or.status());
  auto rs = std::move(rs_or).value();

  // Fragments: a leaf list must hash to the signed root before any unit of
  // that fragment is trusted.
  std::vector<FragmentSource*> by_index(n, nullptr);
  std::vector<std::vector<Digest>> leaves(n);
  for (auto& src : sources) {
    const uint32_t f = src->fragment();
    if (f >= n || by_index[f] != nullptr) {
      report.problems.push_back(src->name() + ": fragment index " + std::to_string(f) +
                                " is out of range or duplicated");
      continue;
    }
    auto l = src->ReadLeaves();
    if (!l.ok()) {
      report.problems.push_back(src->name() + ": fragment " + std::to_string(f) +
                                " leaf hashes unreadable: " + l.status().message());
      continue;
    }
    if (l->size() != m.stripe_count || MerkleRoot(*l) != m.fragment_roots[f]) {
      report.problems.push_back(src->name() + ": fragment " + std::to_string(f) +
                                " leaf hashes do not match the signed Merkle root");
      continue;
    }
    leaves[f] = std::move(l).value();
    by_index[f] = src.get();
  }
  size_t healthy = std::count_if(by_index.begin(), by_index.end(), [](auto* p) { return p; });
  if (healthy < m.k) {
    return fail_early(FailedPrecondition("need " + std::to_string(m.k) + " good fragments, have " +
                                         std::to_string(healthy)));
  }

  std::mutex bad_mu;
  std::vector<bool> bad(n, false);
  std::vector<bool> used(n, false);
  auto mark_bad = [&](uint32_t f, const std::string& why) {
    std::lock_guard<std::mutex> lock(bad_mu);
    if (!bad[f]) {
      bad[f] = true;
      report.problems.push_back(by_index[f]->name() + ": fragment " + std::to_string(f) + " " +
                                why + "; excluded");
    }
  };
  std::vector<uint32_t> order;
  {
    std::vector<bool> listed(n, false);
    for (uint32_t f : opt.fragment_order) {
      if (f < n && !listed[f]) {
        order.push_back(f);
        listed[f] = true;
      }
    }
    // Then data fragments before parity: with all data good, no decoding.
    for (uint32_t f = 0; f < n; ++f) {
      if (!listed[f]) order.push_back(f);
    }
  }
  auto choose = [&](std::vector<uint32_t>& out) {
    std::lock_guard<std::mutex> lock(bad_mu);
    out.clear();
    for (uint32_t f : order) {
      if (out.size() == m.k) break;
      if (by_index[f] != nullptr && !bad[f]) out.push_back(f);
    }
    for (uint32_t f : out) used[f] = true;
  };

  const int threads = WorkerCount(opt.workers);
  const size_t U = m.unit_size;
  std::atomic<bool> decoded{false};
  FileSplitter splitter(m, writer);
  uint64_t written = 0;

  auto claim = [](StripeBuf&) { return Status::Ok(); };
  auto rebuild_stripe = [&](StripeBuf& s) -> Status {
    const uint64_t i = s.index;
    std::vector<uint32_t> set;
    std::vector<uint8_t*> ptrs(n);
    std::vector<UnitView> views(n);
    std::vector<bool> present(n, false), rebuild(n, false);
    uint8_t* units = s.units.data();
    // Units are used where their source holds them (no copy); the stripe's
    // own slots receive what a source must copy and what decoding rebuilds.
    auto slot = [&](uint32_t f) { return MutableByteSpan(units + f * U, U); };
    // Read k units; a unit that fails its leaf excludes its whole fragment
    // and the stripe is retried with the next good one.
    while (true) {
      choose(set);
      if (set.size() < m.k) {
        return FailedPrecondition("stripe " + std::to_string(i) + ": fewer than " +
                                  std::to_string(m.k) + " good fragments remain");
      }
      bool all_good = true;
      for (uint32_t f : set) {
        auto v = by_index[f]->ViewUnit(i, slot(f));
        if (!v.ok()) {
          mark_bad(f,
                   "unreadable at unit " + std::to_string(i) + " (" + v.status().message() + ")");
          all_good = false;
          break;
        }
        if (v->bytes.size() != U || MerkleLeafHash(v->bytes) != leaves[f][i]) {
          mark_bad(f, "unit " + std::to_string(i) + " does not match its signed Merkle leaf");
          all_good = false;
          break;
        }
        views[f] = std::move(v).value();
      }
      if (all_good) break;
    }
    for (uint32_t f = 0; f < n; ++f) ptrs[f] = slot(f).data();
    for (uint32_t f : set) {
      present[f] = true;
      // Reconstruct only reads present units.
      ptrs[f] = const_cast<uint8_t*>(views[f].bytes.data());
    }
    bool need = false;
    for (uint32_t f = 0; f < m.k; ++f) {
      if (!present[f]) rebuild[f] = need = true;
    }
    if (need) {
      decoded.store(true);
      QV_RETURN_IF_ERROR(rs->Reconstruct(U, ptrs, present, rebuild));
    }
    // The chunk is the first plain_len + tag bytes of data units 0..k-1.
    s.plain_len = m.ChunkPlaintextSize(i);
    std::vector<ByteSpan> parts;
    for (size_t f = 0, left = s.plain_len + kAeadTagSize; f < m.k && left > 0; ++f) {
      parts.push_back(ByteSpan(ptrs[f], std::min<size_t>(U, left)));
      left -= parts.back().size();
    }
    const bool final = i + 1 == m.stripe_count;
    Status st = cipher->Open(i, final, parts, s.plain.data());
    return st.WithContext("stripe " + std::to_string(i));
  };
  auto write = [&](StripeBuf& s) -> Status {
    QV_RETURN_IF_ERROR(splitter.Write(ByteSpan(s.plain.data(), s.plain_len)));
    written += s.plain_len;
    if (opt.progress) opt.progress(written, m.plaintext_size);
    return Status::Ok();
  };
  Status run = StripeScheduler(m.stripe_count, threads, Depth(threads), m.chunk_size, n * U, n)
                   .Run(claim, rebuild_stripe, write);
  cipher.reset();
  if (run.ok()) run = splitter.Finish();
  if (run.ok()) run = writer.Commit();
  if (!run.ok()) return fail_early(run);
  for (uint32_t f = 0; f < n; ++f) {
    if (used[f] && !bad[f]) report.fragments_used.push_back(f);
  }
  report.reconstructed = decoded.load();
  report.plaintext_bytes = written;
  report.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  return report;
}

}  // namespace qv
