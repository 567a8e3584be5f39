#include "coordinator/pipeline.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <map>

#include "base/file_util.h"
#include "coordinator/memory_store.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

// Collects restored files in memory.
class CaptureWriter : public ArtifactWriter {
 public:
  Status BeginFile(const FileEntry& e) override {
    current_ = e.path;
    files[current_];
    return Status::Ok();
  }
  Status Write(ByteSpan d) override {
    auto& f = files[current_];
    f.insert(f.end(), d.begin(), d.end());
    return Status::Ok();
  }
  Status EndFile() override { return Status::Ok(); }
  Status Commit() override {
    committed = true;
    return Status::Ok();
  }
  void Abort() override {
    aborted = true;
    files.clear();
  }
  std::map<std::string, Bytes> files;
  bool committed = false, aborted = false;

 private:
  std::string current_;
};

Bytes RandomBytes(size_t n) {
  Bytes b(n);
  if (n > 0) randombytes_buf(b.data(), n);  // data() may be null for n = 0
  return b;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { signer_ = std::move(SigningKey::Generate()).value(); }

  BackupOutcome Backup(MemoryNodes& nodes, const Artifact& a, BackupOptions opt) {
    auto r = RunBackup(a, nodes, *signer_, opt);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }

  Result<RestoreReport> Restore(MemoryNodes& nodes, const BackupOutcome& b, CaptureWriter& w,
                                int workers = 0) {
    RestoreOptions ro;
    ro.workers = workers;
    return RunRestore(b.manifest, nodes.Sources(b.manifest.manifest().unit_size), nodes.Shares(), w,
                      ro);
  }

  std::unique_ptr<SigningKey> signer_;
};

TEST_F(PipelineTest, RoundTripsBoundarySizes) {
  BackupOptions opt;
  opt.max_unit_size = 1024;  // small stripes so boundaries are cheap to hit
  const size_t stripe_plain = 4 * 1024 - 16;
  for (size_t size : {size_t{0}, size_t{1}, stripe_plain - 1, stripe_plain, stripe_plain + 1,
                      3 * stripe_plain, size_t{1} << 20}) {
    SCOPED_TRACE(size);
    Bytes data = RandomBytes(size);
    Artifact a = MemoryArtifact("x", {{"w.bin", data}});
    MemoryNodes nodes(6);
    BackupOutcome b = Backup(nodes, a, opt);
    EXPECT_EQ(b.manifest.manifest().stripe_count,
              StripeCountFor(size, b.manifest.manifest().chunk_size));
    CaptureWriter w;
    auto r = Restore(nodes, b, w);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(w.committed);
    EXPECT_EQ(w.files["w.bin"], data);
  }
}

TEST_F(PipelineTest, MultiFileArtifactWithEmptyFilesRoundTrips) {
  Bytes a1 = RandomBytes(100000), a2 = RandomBytes(3), a3 = RandomBytes(70000);
  Artifact a = MemoryArtifact("model", {{"model-00001.safetensors", a1},
                                        {"empty.txt", {}},
                                        {"tok/tokenizer.json", a2},
                                        {"model-00002.safetensors", a3},
                                        {"zz-empty-last", {}}});
  BackupOptions opt;
  opt.max_unit_size = 4096;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, opt);
  const Manifest& m = b.manifest.manifest();
  ASSERT_EQ(m.files.size(), 5u);
  EXPECT_EQ(m.files[0].path, "empty.txt");  // stream order is sorted
  EXPECT_EQ(m.files[0].sha256, Sha256Of({}));
  EXPECT_EQ(m.files[1].sha256, Sha256Of(a1));
  CaptureWriter w;
  ASSERT_TRUE(Restore(nodes, b, w).ok());
  EXPECT_EQ(w.files.size(), 5u);
  EXPECT_EQ(w.files["model-00001.safetensors"], a1);
  EXPECT_EQ(w.files["tok/tokenizer.json"], a2);
  EXPECT_EQ(w.files["model-00002.safetensors"], a3);
  EXPECT_TRUE(w.files["empty.txt"].empty());
  EXPECT_TRUE(w.files["zz-empty-last"].empty());
}

TEST_F(PipelineTest, RestoresWithAnyMFragmentsAndNMinusTSharesGone) {
  Bytes data = RandomBytes(300000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  BackupOptions opt;
  opt.k = 3;
  opt.m = 2;
  opt.t = 2;
  opt.max_unit_size = 4096;
  MemoryNodes pristine(5);
  BackupOutcome b = Backup(pristine, a, opt);
  for (uint32_t x = 0; x < 5; ++x) {
    for (uint32_t y = x + 1; y < 5; ++y) {
      SCOPED_TRACE(testing::Message() << "lost fragments " << x << "," << y);
      auto copy = pristine.Clone();
      MemoryNodes& nodes = *copy;
      nodes.node(x).fragment.clear();
      nodes.node(y).fragment.clear();
      // n - t = 3 shares deleted: keep only two, on other nodes than the lost ones where possible.
      for (uint32_t f = 0; f < 5; ++f) {
        if (f != (x + 2) % 5 && f != (y + 2) % 5) nodes.node(f).share.reset();
      }
      CaptureWriter w;
      auto r = Restore(nodes, b, w);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(w.files["w"], data);
      EXPECT_EQ(r->reconstructed, x < 3 || y < 3);
    }
  }
}

TEST_F(PipelineTest, AFlippedByteInAFragmentIsNamedAndRoutedAround) {
  Bytes data = RandomBytes(200000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  BackupOptions opt;
  opt.max_unit_size = 4096;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, opt);
  nodes.node(1).fragment[4096 * 5 + 17] ^= 0x20;  // unit 5 of fragment 1
  CaptureWriter w;
  auto r = Restore(nodes, b, w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(w.files["w"], data);
  EXPECT_TRUE(r->reconstructed);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_NE(r->problems[0].find("node-01: fragment 1 unit 5 does not match"), std::string::npos)
      << r->problems[0];
  EXPECT_EQ(std::count(r->fragments_used.begin(), r->fragments_used.end(), 1u), 0);
}

TEST_F(PipelineTest, TamperedLeafListIsCaughtByTheSignedRoot) {
  Bytes data = RandomBytes(50000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  BackupOptions opt;
  opt.max_unit_size = 1024;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, opt);
  // An attacker rewrites a unit AND its leaf hash: the root still catches it.
  nodes.node(0).fragment[10] ^= 1;
  nodes.node(0).leaves[0] = MerkleLeafHash(ByteSpan(nodes.node(0).fragment.data(), 1024));
  CaptureWriter w;
  auto r = Restore(nodes, b, w);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(w.files["w"], data);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_NE(r->problems[0].find("leaf hashes do not match the signed Merkle root"),
            std::string::npos);
}

TEST_F(PipelineTest, TooFewFragmentsIsAClearErrorAndNothingIsCommitted) {
  Bytes data = RandomBytes(100000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  BackupOptions opt;
  opt.max_unit_size = 4096;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, opt);
  nodes.node(0).fragment.clear();
  nodes.node(3).fragment.clear();
  nodes.node(5).fragment[100] ^= 1;  // third loss, found only while streaming
  CaptureWriter w;
  auto r = Restore(nodes, b, w);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("node-05"), std::string::npos) << r.status().message();
  EXPECT_FALSE(w.committed);
  EXPECT_TRUE(w.aborted);
}

// The last check of a restore: each file's bytes against the SHA-256 the
// manifest signs, before the writer commits. A manifest signed with a wrong
// digest (a coordinator bug, or its key's holder) restores nothing, names
// the file, and leaves no file committed, for each file of the artifact,
// empty ones included.
TEST_F(PipelineTest, AFileWhoseBytesDifferFromItsSignedDigestIsNeverCommitted) {
  const Bytes big = RandomBytes(70000), small = RandomBytes(10);
  Artifact a = MemoryArtifact("x", {{"a.bin", big}, {"empty", {}}, {"z.bin", small}});
  BackupOptions opt;
  opt.max_unit_size = 4096;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, opt);
  {
    CaptureWriter w;
    ASSERT_TRUE(Restore(nodes, b, w).ok());
    EXPECT_TRUE(w.committed);
  }
  for (size_t f = 0; f < b.manifest.manifest().files.size(); ++f) {
    Manifest m = b.manifest.manifest();
    m.files[f].sha256[5] ^= 0x40;
    auto resigned = SignedManifest::Sign(m, *signer_);
    ASSERT_TRUE(resigned.ok());
    CaptureWriter w;
    auto r = RunRestore(*resigned, nodes.Sources(m.unit_size), nodes.Shares(), w, {});
    ASSERT_FALSE(r.ok()) << "file " << f;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_NE(r.status().message().find(m.files[f].path + ": restored bytes do not match"),
              std::string::npos)
        << r.status().message();
    EXPECT_FALSE(w.committed);
    EXPECT_TRUE(w.aborted);
  }
}

TEST_F(PipelineTest, TooFewSharesIsAClearErrorNamingBadOnes) {
  Bytes data = RandomBytes(1000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, BackupOptions{});
  for (uint32_t f = 2; f < 6; ++f) nodes.node(f).share.reset();
  nodes.node(1).share->y.data()[3] ^= 1;
  CaptureWriter w;
  auto r = Restore(nodes, b, w);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("need 3 valid key shares, have 1"), std::string::npos);
  EXPECT_NE(r.status().message().find("node-01: share rejected"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(w.committed);
}

TEST_F(PipelineTest, ALyingNodesShareIsNamedAndTheRestoreStillSucceeds) {
  Bytes data = RandomBytes(5000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, BackupOptions{});
  nodes.node(4).share->y.data()[0] ^= 0x10;
  CaptureWriter w;
  auto r = Restore(nodes, b, w);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(w.files["w"], data);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_NE(r->problems[0].find("node-04: share rejected"), std::string::npos);
}

TEST_F(PipelineTest, SharesOfAnotherBackupDoNotRestoreIt) {
  Bytes data = RandomBytes(5000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  MemoryNodes one(6), two(6);
  BackupOutcome b1 = Backup(one, a, BackupOptions{});
  Backup(two, a, BackupOptions{});
  CaptureWriter w;
  auto r = RunRestore(b1.manifest, one.Sources(b1.manifest.manifest().unit_size), two.Shares(), w,
                      RestoreOptions{});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(w.committed);
}

TEST_F(PipelineTest, AesGcmSuiteRoundTripsAndIsRecorded) {
  Bytes data = RandomBytes(123457);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  BackupOptions opt;
  opt.cipher = CipherSuite::kAes256Gcm;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, opt);
  EXPECT_EQ(b.manifest.manifest().cipher, CipherSuite::kAes256Gcm);
  CaptureWriter w;
  ASSERT_TRUE(Restore(nodes, b, w).ok());
  EXPECT_EQ(w.files["w"], data);
}

TEST_F(PipelineTest, SingleWorkerAndManyWorkersProduceRestorableBackups) {
  Bytes data = RandomBytes(700000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  for (int workers : {1, 2, 5}) {
    BackupOptions opt;
    opt.workers = workers;
    opt.max_unit_size = 2048;
    MemoryNodes nodes(6);
    BackupOutcome b = Backup(nodes, a, opt);
    CaptureWriter w;
    ASSERT_TRUE(Restore(nodes, b, w, workers).ok());
    EXPECT_EQ(w.files["w"], data) << workers;
  }
}

// A source whose declared size is not what it yields: a file that changed
// while being read.
Artifact ChangingArtifact(ByteSpan actual, uint64_t declared) {
  Artifact a = MemoryArtifact("x", {{"w", actual}});
  a.files[0].size = declared;
  return a;
}

TEST_F(PipelineTest, AFileThatChangesSizeDuringBackupFailsAndPublishesNothing) {
  Bytes data = RandomBytes(10000);
  for (uint64_t declared : {uint64_t{9000}, uint64_t{11000}}) {
    MemoryNodes nodes(6);
    auto r = RunBackup(ChangingArtifact(data, declared), nodes, *signer_, BackupOptions{});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find(declared < data.size() ? "grew" : "shrank"),
              std::string::npos)
        << r.status().message();
    for (uint32_t f = 0; f < 6; ++f) EXPECT_FALSE(nodes.node(f).published);
  }
}

TEST_F(PipelineTest, BadOptionsAreRefusedBeforeAnythingIsWritten) {
  Bytes data = RandomBytes(10);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  MemoryNodes nodes(6);
  BackupOptions opt;
  opt.t = 7;
  EXPECT_EQ(RunBackup(a, nodes, *signer_, opt).status().code(), StatusCode::kInvalidArgument);
  opt = BackupOptions{};
  opt.max_unit_size = 100;
  EXPECT_EQ(RunBackup(a, nodes, *signer_, opt).status().code(), StatusCode::kInvalidArgument);
  // A unit larger than a node's answer could hold would store a backup that
  // can never be fetched.
  opt.max_unit_size = kMaxUnitSize + 64;
  EXPECT_EQ(RunBackup(a, nodes, *signer_, opt).status().code(), StatusCode::kInvalidArgument);
  opt = BackupOptions{};
  opt.k = 5;  // 7 fragments for 6 nodes
  EXPECT_FALSE(RunBackup(a, nodes, *signer_, opt).ok());
  for (uint32_t f = 0; f < 6; ++f) EXPECT_FALSE(nodes.node(f).published);
}

TEST_F(PipelineTest, RestoreReadsFragmentsInThePreferredOrder) {
  Bytes data = RandomBytes(100000);
  Artifact a = MemoryArtifact("x", {{"w", data}});
  BackupOptions bo;
  bo.max_unit_size = 4096;
  MemoryNodes nodes(6);
  BackupOutcome b = Backup(nodes, a, bo);
  CaptureWriter w;
  RestoreOptions ro;
  ro.fragment_order = {5, 4, 1};  // e.g. the fastest nodes; then index order
  auto r =
      RunRestore(b.manifest, nodes.Sources(b.manifest.manifest().unit_size), nodes.Shares(), w, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(w.files["w"], data);
  EXPECT_EQ(r->fragments_used, (std::vector<uint32_t>{0, 1, 4, 5}));
  EXPECT_TRUE(r->reconstructed);
}

TEST_F(PipelineTest, UnitSizeShrinksForSmallArtifacts) {
  EXPECT_EQ(ChooseUnitSize(0, 4, kDefaultUnitSize), 64u);
  EXPECT_EQ(ChooseUnitSize(1000, 4, kDefaultUnitSize), 256u);
  EXPECT_EQ(ChooseUnitSize(1ull << 30, 4, kDefaultUnitSize), kDefaultUnitSize);
  for (uint64_t size : {0ull, 1ull, 1000ull, 1ull << 20, 1ull << 30}) {
    uint32_t u = ChooseUnitSize(size, 4, kDefaultUnitSize);
    EXPECT_EQ(u % 64, 0u);
    EXPECT_LE(u, kDefaultUnitSize);
  }
}

// A file list whose manifest could not be carried is refused before any
// byte is uploaded (the sinks are never opened), naming the limit.
TEST(ManifestLimitTest, AFileListTooLargeForAManifestIsRefusedBeforeUploading) {
  Artifact a;
  a.name = "huge";
  const std::string prefix(4000, 'q');
  for (int i = 0; i < 68000; ++i) {
    a.files.push_back({prefix + std::to_string(i), 0, nullptr});
  }
  struct NeverOpened : BackupTarget {
    bool opened = false;
    Result<std::vector<std::unique_ptr<FragmentSink>>> OpenSinks(const BackupId&, uint32_t,
                                                                 uint32_t, uint64_t) override {
      opened = true;
      return Internal("must not be reached");
    }
  } target;
  auto key = SigningKey::Generate();
  auto r = RunBackup(a, target, **key, BackupOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(target.opened);
  EXPECT_NE(r.status().message().find("68000 files make a manifest of about 262 MiB, over the 256 "
                                      "MiB limit"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace qv
