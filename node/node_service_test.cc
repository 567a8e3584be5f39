// A whole cluster in one process: six NodeServices with real SQLite stores
// and fragment files, driven through the same pipeline and the message codec.
#include "node/node_service.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/local_cluster.h"
#include "coordinator/node_io.h"
#include "coordinator/pipeline.h"
#include "crypto/secretbox.h"
#include "crypto/vss.h"
#include "quorum/enrollment.h"
#include "quorum/request.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

class InProcessClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = InitLocalCluster(tmp_.path() / "c", LocalClusterOptions{});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = *c;
    coordinator_ = std::move(SigningKey::Load(tmp_.path() / "c/coordinator.key")).value();
    for (const auto& n : cluster_.nodes) OpenNode(n.id);
    data_.resize(500000);
    randombytes_buf(data_.data(), data_.size());
  }

  void OpenNode(const std::string& id) {
    const size_t i = cluster_.FindNode(id) - cluster_.nodes.data();
    if (services_.size() <= i) {
      services_.resize(cluster_.nodes.size());
      stores_.resize(cluster_.nodes.size());
      callers_.resize(cluster_.nodes.size());
    }
    callers_[i].reset();
    if (i < requesters_.size()) requesters_[i].reset();
    services_[i].reset();
    stores_[i].reset();
    fs::path nd = tmp_.path() / "c/nodes" / id;
    Bytes mk = *ReadFileBytes(nd / "master.key", 32);
    auto store = NodeStore::Open(nd / "data", SecretBytes::CopyFrom(mk), id, cluster_.coordinator);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    stores_[i] = std::move(store).value();
    if (keys_.size() <= i) keys_.resize(cluster_.nodes.size());
    keys_[i] = std::move(SigningKey::Load(nd / "node.key")).value();
    NodeServiceOptions opt;
    opt.identity = keys_[i].get();
    if (node_clock_ != nullptr) opt.clock = node_clock_;
    // Peers in the same process, called as node `id`.
    opt.peers = [this, id](const NodeEntry& n, const Request& r) -> Result<Response> {
      const size_t j = cluster_.FindNode(n.id) - cluster_.nodes.data();
      if (j >= services_.size() || !services_[j]) return IoError(n.id + " is down");
      if (r.op == Op::kGetManifestHash) ++manifest_hash_calls_;
      InProcessCaller as_peer(services_[j].get(), PeerInfo{PeerRole::kNode, id});
      return as_peer.Call(r);
    };
    services_[i] = std::make_unique<NodeService>(
        stores_[i].get(), cluster_, id,
        [this](const std::string& l) {
          std::lock_guard<std::mutex> lock(log_mu_);  // nodes log from parallel threads
          log_.push_back(l);
        },
        opt);
    callers_[i] = std::make_unique<InProcessCaller>(
        services_[i].get(), PeerInfo{PeerRole::kCoordinator, "coordinator"});
    if (requesters_.size() <= i) requesters_.resize(cluster_.nodes.size());
    requesters_[i] = std::make_unique<InProcessCaller>(
        services_[i].get(),
        PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
  }

  // A certificate for restoring `sm`, requested by the operator and approved
  // by the named custodians (their keys in `custodian_dir`, default the
  // cluster's).
  Result<Bytes> Certificate(const SignedManifest& sm, std::vector<std::string> approvers,
                            fs::path custodian_dir = {}) {
    if (custodian_dir.empty()) custodian_dir = tmp_.path() / "c/custodians";
    QV_ASSIGN_OR_RETURN(auto op, SigningKey::Load(tmp_.path() / "c/operator.key"));
    QuorumRequest q;
    q.backup_id = sm.manifest().backup_id;
    q.manifest_hash = sm.Hash();
    q.backup_name = sm.manifest().artifact_name;
    q.requester_id = "operator";
    q.requester_key = op->public_key();
    q.reply_key = reply_.public_key;
    q.purpose = "test";
    q.created_unix = std::time(nullptr);
    q.expires_unix = q.created_unix + 600;
    randombytes_buf(q.nonce.data(), q.nonce.size());
    QV_ASSIGN_OR_RETURN(SignedRequest sr, SignedRequest::Sign(q, *op));
    qv::Certificate c{sr, {}};
    for (const auto& id : approvers) {
      QV_ASSIGN_OR_RETURN(auto k, SigningKey::Load(custodian_dir / (id + ".key")));
      QV_ASSIGN_OR_RETURN(Approval a, Approval::Sign(sr, *k, id, true, "", q.created_unix));
      c.approvals.push_back(std::move(a));
    }
    return c.Encode();
  }

  // A release of backup `id` under `cert`; `proof` of the reply key makes it a retry.
  static Request ReleaseOf(const BackupId& id, const Bytes& cert, const Bytes& proof = {}) {
    Request rel;
    rel.op = Op::kRelease;
    rel.backup_id = id;
    rel.payload = cert;
    rel.payload2 = proof;
    return rel;
  }

  // Presents `cert` for backup `id` to node i as the requester "operator".
  Response PresentAsOperator(size_t i, const BackupId& id, const Bytes& cert) {
    NodeService::Session op(
        PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
    return services_[i]->Handle(op, ReleaseOf(id, cert));
  }

  // Liars stand in for a node when set.
  std::vector<PublicKey> NodeKeys() const {
    std::vector<PublicKey> out;
    for (const auto& n : cluster_.nodes) out.push_back(n.public_key);
    return out;
  }

  std::vector<NodeCaller*> Callers() {
    std::vector<NodeCaller*> out;
    for (size_t i = 0; i < callers_.size(); ++i) {
      out.push_back(i < liars_.size() && liars_[i] ? liars_[i] : callers_[i].get());
    }
    return out;
  }

  // The requester's sessions (restores run on them).
  std::vector<NodeCaller*> RequesterCallers() {
    std::vector<NodeCaller*> out;
    for (size_t i = 0; i < requesters_.size(); ++i) {
      out.push_back(i < liars_.size() && liars_[i] ? liars_[i] : requesters_[i].get());
    }
    return out;
  }

  // Fragment f on the cluster file's node f, as ClusterSession places them.
  std::vector<Placement> Placements() const {
    std::vector<Placement> placement;
    for (uint32_t f = 0; f < cluster_.nodes.size(); ++f) {
      placement.push_back({f, cluster_.nodes[f].id, cluster_.nodes[f].site});
    }
    return placement;
  }

  Result<BackupOutcome> Backup() { return Backup(MemoryArtifact("m", {{"w.safetensors", data_}})); }

  Result<BackupOutcome> Backup(const Artifact& a) {
    RemoteTarget target(Callers(), Placements(), NodeKeys());
    BackupOptions o;
    o.max_unit_size = max_unit_;
    for (const auto& c : cluster_.custodians) o.policy.custodians.push_back({c.id, c.public_key});
    o.policy.quorum = cluster_.quorum;
    o.policy.max_request_seconds = cluster_.max_request_seconds;
    o.policy.quorum_ops = AllQuorumOps();
    return RunBackup(a, target, *coordinator_, o);
  }

  struct Restored {
    std::vector<std::string> problems;
    Bytes bytes;
  };
  Result<Restored> Restore(const BackupId& id) {
    Restored out;
    QV_ASSIGN_OR_RETURN(SignedManifest sm,
                        FetchManifest(RequesterCallers(), id, cluster_.coordinator, &out.problems));
    std::vector<std::unique_ptr<FragmentSource>> sources;
    for (const auto& p : sm.manifest().placement) {
      sources.push_back(NewRemoteSource(RequesterCallers()[p.fragment], id, p.fragment,
                                        sm.manifest().unit_size, sm.manifest().stripe_count));
    }
    QV_ASSIGN_OR_RETURN(Bytes cert, Certificate(sm, {"c1", "c2", "c3"}));
    auto shares = ReleaseShares(RequesterCallers(), sm, cert, reply_, &out.problems);
    class Capture : public ArtifactWriter {
     public:
      Bytes* out;
      Status BeginFile(const FileEntry&) override { return Status::Ok(); }
      Status Write(ByteSpan d) override {
        out->insert(out->end(), d.begin(), d.end());
        return Status::Ok();
      }
      Status EndFile() override { return Status::Ok(); }
      Status Commit() override { return Status::Ok(); }
      void Abort() override {}
    } w;
    w.out = &out.bytes;
    QV_ASSIGN_OR_RETURN(RestoreReport r,
                        RunRestore(sm, std::move(sources), std::move(shares), w, RestoreOptions{}));
    for (auto& p : r.problems) out.problems.push_back(p);
    return out;
  }

  ScopedTempDir tmp_{"qv-node-test"};
  ClusterConfig cluster_;
  std::unique_ptr<SigningKey> coordinator_;
  std::vector<std::unique_ptr<NodeStore>> stores_;
  std::vector<std::unique_ptr<SigningKey>> keys_;  // each node's identity
  std::vector<std::unique_ptr<NodeService>> services_;
  std::atomic<uint32_t> manifest_hash_calls_{0};
  std::vector<std::unique_ptr<InProcessCaller>> callers_;     // as the coordinator
  std::vector<std::unique_ptr<InProcessCaller>> requesters_;  // as the requester "operator"
  std::vector<NodeCaller*> liars_;
  uint32_t max_unit_ = 16384;
  const Clock* node_clock_ = nullptr;  // nodes opened while set run on it
  std::mutex log_mu_;
  std::vector<std::string> log_;
  BoxKeyPair reply_ = NewBoxKeyPair();
  Bytes data_;
};

TEST_F(InProcessClusterTest, BackupAndRestoreThroughNodeServices) {
  auto b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const BackupId id = b->manifest.manifest().backup_id;
  for (auto& s : stores_) {
    auto list = s->List();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].state, "published");
  }
  auto r = Restore(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, data_);
  // One log line per request, naming peer, request and outcome, never a share.
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_.back().find("peer=operator"), std::string::npos) << log_.back();
  for (const auto& l : log_) EXPECT_EQ(l.find("payload"), std::string::npos);
}

TEST_F(InProcessClusterTest, RestoreSurvivesAWholeSiteGone) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  fs::remove_all(tmp_.path() / "c/nodes/node-00/data");  // a whole site's worth
  fs::remove_all(tmp_.path() / "c/nodes/node-01/data");
  OpenNode("node-00");
  OpenNode("node-01");
  auto r = Restore(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, data_);
  EXPECT_GE(r->problems.size(), 2u);
}

TEST_F(InProcessClusterTest, NothingIsReleasedWithoutACertificate) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  // Even the coordinator gets neither units nor a share without one.
  NodeService::Session coord(PeerInfo{PeerRole::kCoordinator, "coordinator"});
  Request f;
  f.op = Op::kFetchUnits;
  f.backup_id = id;
  f.a = 0;
  f.b = 1;
  EXPECT_EQ(services_[0]->Handle(coord, f).ToStatus().code(), StatusCode::kPermissionDenied);
  Request rel;
  rel.op = Op::kRelease;
  rel.backup_id = id;
  auto under = Certificate(b->manifest, {"c1", "c2"});
  ASSERT_TRUE(under.ok());
  rel.payload = *under;
  NodeService::Session op(
      PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
  Response refused = services_[0]->Handle(op, rel);
  EXPECT_EQ(refused.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message.find("below quorum: 2 of 3"), std::string::npos) << refused.message;
  EXPECT_TRUE(refused.payload.empty());
  EXPECT_EQ(services_[0]->Handle(op, f).ToStatus().code(), StatusCode::kPermissionDenied);
  for (PeerInfo who :
       {PeerInfo{PeerRole::kNode, "node-03"}, PeerInfo{PeerRole::kUnknown, "unknown:ab"}}) {
    NodeService::Session s(who);
    Request r;
    r.op = Op::kRelease;
    r.backup_id = id;
    r.payload = *Certificate(b->manifest, {"c1", "c2", "c3"});
    Response resp = services_[0]->Handle(s, r);
    EXPECT_EQ(resp.ToStatus().code(), StatusCode::kPermissionDenied) << who.name;
    EXPECT_TRUE(resp.payload.empty());
    r.op = Op::kBeginFragment;
    EXPECT_EQ(services_[0]->Handle(s, r).ToStatus().code(), StatusCode::kPermissionDenied);
  }
  EXPECT_NE(log_.back().find("not allowed for unknown:ab"), std::string::npos) << log_.back();
}

// A certificate is presented by the requester it names, proved by the
// channel. The coordinator key (or another pinned requester) holding the
// files cannot spend it first: refused, audited, and the certificate
// still works for its requester.
TEST_F(InProcessClusterTest, OnlyTheNamedRequesterCanPresentItsCertificate) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  auto cert = Certificate(b->manifest, {"c1", "c2", "c3"});
  ASSERT_TRUE(cert.ok());
  auto other = SigningKey::Generate();
  for (PeerInfo who : {PeerInfo{PeerRole::kCoordinator, "coordinator", cluster_.coordinator},
                       PeerInfo{PeerRole::kRequester, "operator", (*other)->public_key()}}) {
    NodeService::Session s(who);
    Request rel;
    rel.op = Op::kRelease;
    rel.backup_id = id;
    rel.payload = *cert;
    Response resp = services_[0]->Handle(s, rel);
    EXPECT_EQ(resp.ToStatus().code(), StatusCode::kPermissionDenied) << who.name;
    EXPECT_NE(resp.message.find("only the requester the request names (operator)"),
              std::string::npos)
        << resp.message;
    EXPECT_TRUE(resp.payload.empty());
  }
  Response ok = PresentAsOperator(0, id, *cert);
  EXPECT_TRUE(ok.ToStatus().ok()) << ok.message;
  EXPECT_FALSE(ok.payload.empty());
}

// A release opens fetching on its connection only for the request's
// lifetime (plus the clock skew): a requester that keeps the connection
// open after that gets no more units, and a fresh certificate is needed.
TEST_F(InProcessClusterTest, FetchingUnitsStopsWhenTheRequestsLifetimeEnds) {
  auto b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const BackupId id = b->manifest.manifest().backup_id;
  FakeClock clock(std::time(nullptr));
  node_clock_ = &clock;
  OpenNode("node-00");
  auto cert = Certificate(b->manifest, {"c1", "c2", "c3"});  // lives 600 s
  ASSERT_TRUE(cert.ok());
  NodeService::Session op(
      PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
  ASSERT_TRUE(services_[0]->Handle(op, ReleaseOf(id, *cert)).ToStatus().ok());
  Request f;
  f.op = Op::kFetchUnits;
  f.backup_id = id;
  f.a = 0;
  f.b = 1;
  Response first = services_[0]->Handle(op, f);
  ASSERT_TRUE(first.ToStatus().ok()) << first.message;
  EXPECT_FALSE(first.payload.empty());
  clock.Advance(600 + 300);  // the last second the request (with skew) still lives
  EXPECT_TRUE(services_[0]->Handle(op, f).ToStatus().ok());
  clock.Advance(2);
  Response late = services_[0]->Handle(op, f);
  EXPECT_EQ(late.ToStatus().code(), StatusCode::kPermissionDenied) << late.message;
  EXPECT_NE(late.message.find("unexpired"), std::string::npos) << late.message;
  EXPECT_TRUE(late.payload.empty());
}

// Each released share is sealed to the reply key the signed request names,
// whatever else the message carries: it opens with that key's secret to a
// share the manifest's commitments accept, and with no other key.
TEST_F(InProcessClusterTest, EachShareIsSealedToTheSignedReplyKeyAndNothingElse) {
  auto b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const SignedManifest& sm = b->manifest;
  const BackupId id = sm.manifest().backup_id;
  auto cert = Certificate(sm, {"c1", "c2", "c3"});
  ASSERT_TRUE(cert.ok());
  const BoxKeyPair stranger = NewBoxKeyPair();
  for (size_t i = 0; i < services_.size(); ++i) {
    NodeService::Session op(
        PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
    // An unsigned key beside the certificate is not where the share goes.
    Response resp = services_[i]->Handle(
        op, ReleaseOf(id, *cert, Bytes(stranger.public_key.begin(), stranger.public_key.end())));
    ASSERT_TRUE(resp.ToStatus().ok()) << resp.message;
    EXPECT_FALSE(OpenSealed(stranger, resp.payload).ok()) << "node " << i;
    auto plain = OpenSealed(reply_, resp.payload);
    ASSERT_TRUE(plain.ok()) << "node " << i << ": " << plain.status().ToString();
    auto share = DecodeShare(plain->span());
    ASSERT_TRUE(share.ok()) << share.status().ToString();
    EXPECT_EQ(share->x, i + 1);
    EXPECT_TRUE(VerifyShare(*share, sm.manifest().commitments).ok()) << "node " << i;
  }
}

// A coordinator (a bug, or whoever holds its key) that hands a node a share
// off the manifest's Feldman commitments is refused at prepare, before the
// node stores anything, not found out when a restore needs the share.
TEST_F(InProcessClusterTest, AShareOffTheCommitmentsIsRefusedAtBackupTime) {
  struct Tamper : NodeCaller {
    NodeCaller* inner;
    std::string n;
    std::array<uint8_t, 32> node_x{};
    Response prepared;
    const std::string& name() const override { return n; }
    Result<Response> Call(Request r) override {
      if (r.op != Op::kPrepare) return inner->Call(std::move(r));
      Share wrong{3, SecretBytes(kScalarSize)};  // node-02's index, another value
      crypto_core_ristretto255_scalar_random(wrong.y.data());
      QV_ASSIGN_OR_RETURN(r.payload2, SealToKey(node_x, EncodeShare(wrong)));
      QV_ASSIGN_OR_RETURN(prepared, inner->Call(std::move(r)));
      return prepared;
    }
  } tamper;
  tamper.inner = callers_[2].get();
  tamper.n = "node-02";
  tamper.node_x = *X25519PublicFromEd25519(cluster_.nodes[2].public_key);
  std::vector<NodeCaller*> callers = Callers();
  callers[2] = &tamper;
  {
    RemoteTarget target(callers, Placements(), NodeKeys());
    (void)RunBackup(MemoryArtifact("m", {{"w", data_}}), target, *coordinator_, {});
  }
  EXPECT_FALSE(tamper.prepared.ToStatus().ok());
  EXPECT_NE(tamper.prepared.message.find("does not match the commitments"), std::string::npos)
      << tamper.prepared.message;
  for (const auto& b : stores_[2]->List()) EXPECT_NE(b.state, "published");
}

// A certificate spends its request id on the node that honours it. Shown
// again it is a replay, refused (audited: ClusterTest.EveryForged...), unless it comes with a proof
// that its bearer holds the request's one-time reply key; that retry is
// allowed max_retries (3) times per node, and a proof made for another node
// (or with another key) counts for nothing.
TEST_F(InProcessClusterTest, AReplayIsRefusedAndOnlyTheReplyKeyHolderRetriesThreeTimes) {
  auto b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const BackupId id = b->manifest.manifest().backup_id;
  auto cert = Certificate(b->manifest, {"c1", "c2", "c3"});
  ASSERT_TRUE(cert.ok());
  auto parsed = qv::Certificate::Parse(*cert);
  ASSERT_TRUE(parsed.ok());
  const RequestId rid = parsed->request.id();
  auto proof_for = [&](const BoxKeyPair& key, const std::string& node) {
    auto x = X25519PublicFromEd25519(cluster_.FindNode(node)->public_key);
    auto p = ProvePossession(key, *x, AsBytes(ReleaseRetryContext(rid, node)));
    return Bytes(p->begin(), p->end());
  };
  auto present = [&](const Bytes& proof) {
    NodeService::Session op(
        PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
    return services_[0]->Handle(op, ReleaseOf(id, *cert, proof));
  };
  ASSERT_TRUE(present({}).ToStatus().ok());
  const BoxKeyPair stranger = NewBoxKeyPair();
  for (const Bytes& bad : {Bytes{}, proof_for(stranger, "node-00"), proof_for(reply_, "node-01")}) {
    Response replay = present(bad);
    EXPECT_EQ(replay.ToStatus().code(), StatusCode::kPermissionDenied) << replay.message;
    EXPECT_NE(replay.message.find("certificate reuse"), std::string::npos) << replay.message;
    EXPECT_TRUE(replay.payload.empty());
  }
  for (int retry = 1; retry <= 3; ++retry) {
    Response again = present(proof_for(reply_, "node-00"));
    ASSERT_TRUE(again.ToStatus().ok()) << "retry " << retry << ": " << again.message;
    EXPECT_TRUE(OpenSealed(reply_, again.payload).ok());
  }
  Response fourth = present(proof_for(reply_, "node-00"));
  EXPECT_FALSE(fourth.ToStatus().ok());
  EXPECT_NE(fourth.message.find("already retried 3 times"), std::string::npos) << fourth.message;
  EXPECT_TRUE(fourth.payload.empty());
}

// A node's master key is checked against the key-check value it stored at
// first start: another key (a swapped or corrupted key file) is refused when
// the store opens, before any request is spent, and the right key still opens it.
TEST_F(InProcessClusterTest, AStoreRefusesToOpenWithAnotherMasterKey) {
  ASSERT_TRUE(Backup().ok());
  const fs::path nd = tmp_.path() / "c/nodes/node-01";
  callers_[1].reset();
  requesters_[1].reset();
  services_[1].reset();
  stores_[1].reset();
  auto wrong =
      NodeStore::Open(nd / "data", SecretBytes::Random(32), "node-01", cluster_.coordinator);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(wrong.status().message().find("does not match this node's data"), std::string::npos)
      << wrong.status().message();
  Bytes mk = *ReadFileBytes(nd / "master.key", 32);
  EXPECT_TRUE(
      NodeStore::Open(nd / "data", SecretBytes::CopyFrom(mk), "node-01", cluster_.coordinator)
          .ok());
}

// A node keeps at most kMaxPendingRequests unexpired pending requests: the
// next new one is refused (a known one is not), and expired ones make room.
TEST_F(InProcessClusterTest, PendingRequestsAreCappedAndExpiredOnesMakeRoom) {
  NodeStore& store = *stores_[0];
  const BackupId backup{7};
  const Bytes request(100, 1);
  const int64_t now = 1790000000;
  auto id = [](size_t i) { return "request-" + std::to_string(i); };
  for (size_t i = 0; i < kMaxPendingRequests; ++i) {
    ASSERT_TRUE(store.AddPending(id(i), backup, request, now, now + 600).ok()) << i;
  }
  Status full = store.AddPending(id(kMaxPendingRequests), backup, request, now, now + 600);
  EXPECT_EQ(full.code(), StatusCode::kFailedPrecondition) << full.ToString();
  EXPECT_NE(full.message().find("keeps 1024 pending requests already"), std::string::npos)
      << full.message();
  EXPECT_TRUE(store.AddPending(id(0), backup, request, now, now + 600).ok());  // known
  EXPECT_TRUE(
      store.AddPending(id(kMaxPendingRequests), backup, request, now + 601, now + 1200).ok());
}

TEST_F(InProcessClusterTest, AnInterruptedUploadIsDiscardedAndNeverServed) {
  BackupId id{9};
  // The session (and its upload) is deliberately leaked: a crashed process
  // runs no destructors, so nothing gets to clean up before the restart.
  auto* s = new NodeService::Session({PeerRole::kCoordinator, "coordinator"});
#ifdef __SANITIZE_ADDRESS__
  __lsan_ignore_object(s);  // leaked on purpose, as above
#endif
  Request r;
  r.op = Op::kBeginFragment;
  r.backup_id = id;
  r.a = 1024;
  r.b = 4;
  ASSERT_TRUE(services_[2]->Handle(*s, r).ToStatus().ok());
  r.op = Op::kFragmentData;
  r.payload.assign(1500, 7);
  ASSERT_TRUE(services_[2]->Handle(*s, r).ToStatus().ok());
  OpenNode("node-02");
  EXPECT_TRUE(stores_[2]->List().empty());
  EXPECT_FALSE(stores_[2]->ReadUnits(id, 0, 1).ok());
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "c/nodes/node-02/data/staging"));
}

TEST_F(InProcessClusterTest, AFragmentThatDoesNotMatchTheManifestIsRefusedAtPrepare) {
  // A node receiving altered units refuses the prepare: the signed root disagrees.
  struct Tamper : NodeCaller {
    NodeCaller* inner;
    std::string n;
    const std::string& name() const override { return n; }
    Result<Response> Call(Request r) override {
      if (r.op == Op::kFragmentData && !r.payload.empty()) r.payload[0] ^= 1;
      return inner->Call(std::move(r));
    }
  } tamper;
  tamper.inner = callers_[4].get();
  tamper.n = "node-04";
  std::vector<NodeCaller*> callers = Callers();
  callers[4] = &tamper;
  const std::vector<Placement> placement = Placements();
  RemoteTarget target(callers, placement, NodeKeys());
  Artifact a = MemoryArtifact("m", {{"w", data_}});
  auto b = RunBackup(a, target, *coordinator_, BackupOptions{});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("node-04"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("Merkle root"), std::string::npos) << b.status().message();
  // Nothing half-registered anywhere.
  for (auto& s : stores_) EXPECT_TRUE(s->List().empty());
}

// What crosses the wire at prepare is the share sealed to the receiving
// node's key: the observer (standing for every heap buffer on the way, and
// the transport) sees 84 opaque bytes that no other node's key opens, and a
// node refuses a share sent in the clear.
TEST_F(InProcessClusterTest, SharesTravelSealedToTheReceivingNodeOnly) {
  struct Observe : NodeCaller {
    NodeCaller* inner;
    std::string n;
    Bytes seen;
    bool plain = false;
    const std::string& name() const override { return n; }
    Result<Response> Call(Request r) override {
      if (r.op == Op::kPrepare) {
        seen = r.payload2;
        if (plain) r.payload2.resize(kEncodedShareSize);  // what an old coordinator sent
      }
      return inner->Call(std::move(r));
    }
  } observe;
  observe.inner = callers_[3].get();
  observe.n = "node-03";
  std::vector<NodeCaller*> callers = Callers();
  callers[3] = &observe;
  const std::vector<Placement> placement = Placements();
  {
    RemoteTarget target(callers, placement, NodeKeys());
    ASSERT_TRUE(RunBackup(MemoryArtifact("m", {{"w", data_}}), target, *coordinator_, {}).ok());
  }
  ASSERT_EQ(observe.seen.size(), kEncodedShareSize + kBoxSealOverhead);
  auto box = [&](int i) {
    auto pub = X25519PublicFromEd25519(cluster_.nodes[i].public_key);
    return BoxKeyPair{*pub, keys_[i]->X25519Secret()};
  };
  EXPECT_TRUE(OpenSealed(box(3), observe.seen).ok());
  EXPECT_FALSE(OpenSealed(box(2), observe.seen).ok());
  observe.plain = true;
  RemoteTarget target(callers, placement, NodeKeys());
  auto b = RunBackup(MemoryArtifact("m", {{"w", data_}}), target, *coordinator_, {});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("node-03"), std::string::npos) << b.status().message();
}

// A manifest larger than a whole message may be (24 MiB: here 7,200 files
// with 3,500-byte paths, 25 MB) goes to every node in pieces and comes back
// in pages; the restore is byte for byte.
TEST_F(InProcessClusterTest, AManifestLargerThanAMessageTravelsInPages) {
  std::vector<std::string> names;
  std::vector<Bytes> contents;
  for (int i = 0; i < 7200; ++i) {
    names.push_back(std::string(3500, 'p') + "/f" + std::to_string(i));
    contents.push_back(Bytes{static_cast<uint8_t>(i), static_cast<uint8_t>(i >> 8)});
  }
  std::vector<std::pair<std::string, ByteSpan>> files;
  for (int i = 0; i < 7200; ++i) files.push_back({names[i], contents[i]});
  auto b = Backup(MemoryArtifact("many", files));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_GT(b->manifest.encoded().size(), kMaxPayload);
  std::vector<std::string> problems;
  auto fetched =
      FetchManifest(Callers(), b->manifest.manifest().backup_id, cluster_.coordinator, &problems);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->encoded(), b->manifest.encoded());
  EXPECT_TRUE(problems.empty());
  auto r = Restore(b->manifest.manifest().backup_id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Bytes expected;
  std::vector<size_t> order(7200);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return names[x] < names[y]; });
  for (size_t i : order) AppendBytes(expected, contents[i]);
  EXPECT_EQ(r->bytes, expected);
}

// A backup of more stripes than one answer holds leaf hashes for (1,000,100
// stripes of 64-byte units: 32 MB of leaves per fragment, over the 24 MiB
// message limit) restores: leaves travel in pages.
TEST_F(InProcessClusterTest, ABackupOfMoreThanAMillionStripesRestores) {
  max_unit_ = 64;
  const uint64_t stripes = 1000100;
  Bytes big(stripes * (4 * 64 - kAeadTagSize));
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<uint8_t>(i >> 12);
  auto b = Backup(MemoryArtifact("long", {{"w.bin", big}}));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->manifest.manifest().stripe_count, stripes);
  ASSERT_GT(stripes * 32, kMaxPayload);
  auto r = Restore(b->manifest.manifest().backup_id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->bytes == big);
  // Asked for all at once, a node says to page rather than fail the message.
  Request all;
  all.op = Op::kGetLeaves;
  all.backup_id = b->manifest.manifest().backup_id;
  auto resp = callers_[0]->Call(all);
  ASSERT_TRUE(resp.ok());
  EXPECT_NE(resp->message.find("ask for them in pages"), std::string::npos) << resp->message;
}

// An upload declaring more than the disk holds (64 PiB here) is refused
// when it begins, before any data moves, naming the space it lacks.
TEST_F(InProcessClusterTest, AnUploadLargerThanTheFreeSpaceIsRefusedAtBegin) {
  Request begin;
  begin.op = Op::kBeginFragment;
  begin.backup_id.fill(7);
  begin.a = 16u << 20;   // unit
  begin.b = 1ull << 32;  // stripes: 64 PiB with the leaves
  Response r = services_[0]->Handle(
      *std::make_unique<NodeService::Session>(PeerInfo{PeerRole::kCoordinator, "coordinator"}),
      begin);
  EXPECT_EQ(r.ToStatus().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message.find("not enough space"), std::string::npos) << r.message;
  EXPECT_TRUE(stores_[0]->List().empty());
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "c/nodes/node-00/data/staging"));
  // A size that fits is taken.
  begin.b = 16;
  NodeService::Session s(PeerInfo{PeerRole::kCoordinator, "coordinator"});
  EXPECT_TRUE(services_[0]->Handle(s, begin).ToStatus().ok());
}

// The share at rest opens only beside the manifest it was stored with: a
// manifest re-signed with the coordinator key (other custodians, same id)
// dropped into a node's folder does not make the node release.
TEST_F(InProcessClusterTest, AReplacedManifestDoesNotUnlockTheStoredShare) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  Manifest evil = b->manifest.manifest();
  const fs::path keys = tmp_.path() / "evil";
  fs::create_directories(keys);
  evil.policy.custodians.clear();
  for (const char* c : {"c1", "c2", "c3"}) {
    auto k = SigningKey::Generate();
    ASSERT_TRUE((*k)->Save(keys / (std::string(c) + ".key")).ok());
    evil.policy.custodians.push_back({c, (*k)->public_key()});
  }
  auto signed_evil = SignedManifest::Sign(evil, *coordinator_);
  ASSERT_TRUE(signed_evil.ok());
  const fs::path folder = tmp_.path() / "c/nodes/node-00/data/backups" / BackupIdToText(id);
  ASSERT_TRUE(WriteFileAtomic(folder / "manifest", signed_evil->encoded(), 0600).ok());
  auto cert = Certificate(*signed_evil, {"c1", "c2", "c3"}, keys);
  ASSERT_TRUE(cert.ok());
  Response resp = PresentAsOperator(0, id, *cert);
  EXPECT_NE(resp.ToStatus().code(), StatusCode::kOk);
  EXPECT_NE(resp.message.find("not sealed beside this manifest"), std::string::npos)
      << resp.message;
  EXPECT_TRUE(resp.payload.empty());
  // Another node, untouched, releases for the real custodians.
  auto real = Certificate(b->manifest, {"c1", "c2", "c3"});
  Response fine = PresentAsOperator(1, id, *real);
  EXPECT_TRUE(fine.ToStatus().ok()) << fine.message;
}

// A share sealed by the previous release (format 1, not bound to its
// manifest) is sealed again, bound, when the node opens; restores go on.
TEST_F(InProcessClusterTest, SharesSealedByThePreviousFormatAreMigratedAtOpen) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  const fs::path nd = tmp_.path() / "c/nodes/node-02";
  const fs::path file = nd / "data/backups" / BackupIdToText(id) / "share.sealed";
  SecretBytes master = SecretBytes::CopyFrom(*ReadFileBytes(nd / "master.key", 32));
  auto bound = ReadFileBytes(file, 4096);
  ASSERT_TRUE(bound.ok());
  ASSERT_EQ(std::string(bound->begin(), bound->begin() + 4), "QVS2");
  auto plain = OpenSecret(
      master, "node-share/v2:" + BackupIdToText(id) + ":3:" + HexEncode(b->manifest.Hash()),
      ByteSpan(*bound).subspan(4));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  auto v1 = SealSecret(master, "node-share:" + BackupIdToText(id) + ":3", *plain);
  ASSERT_TRUE(WriteFileAtomic(file, *v1, 0600).ok());
  OpenNode("node-02");
  bool said = false;
  for (const auto& line : stores_[2]->recovery())
    said |= line.find("bound to their manifests") != std::string::npos;
  EXPECT_TRUE(said);
  auto again = ReadFileBytes(file, 4096);
  EXPECT_EQ(std::string(again->begin(), again->begin() + 4), "QVS2");
  auto r = Restore(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, data_);
  EXPECT_TRUE(r->problems.empty()) << r->problems[0];
}

// A node whose clock most of its peers contradict (a jump of two hours)
// releases nothing, with the reason, until they agree again; one peer with
// a wrong clock does not stop it.
TEST_F(InProcessClusterTest, ANodeWhoseClockItsPeersContradictReleasesNothing) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  auto release = [&] {
    return PresentAsOperator(0, id, *Certificate(b->manifest, {"c1", "c2", "c3"}));
  };
  services_[0]->NotePeerClock("node-05", 7200);  // one peer is off: it is alerted on
  EXPECT_TRUE(services_[0]->ClockProblem().empty());
  EXPECT_TRUE(release().ToStatus().ok());
  for (const char* p : {"node-01", "node-02", "node-03"}) services_[0]->NotePeerClock(p, -7200);
  services_[0]->NotePeerClock("node-04", 0);
  EXPECT_FALSE(services_[0]->ClockProblem().empty());
  Response refused = release();
  EXPECT_EQ(refused.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message.find("clock disagrees with 4 of its 5 peers"), std::string::npos)
      << refused.message;
  EXPECT_TRUE(refused.payload.empty());
  bool alerted = false;
  for (const auto& l : log_) alerted |= l.find("event=clock-suspect") != std::string::npos;
  EXPECT_TRUE(alerted);
  for (const char* p : {"node-01", "node-02", "node-03", "node-05"}) {
    services_[0]->NotePeerClock(p, 1);
  }
  EXPECT_TRUE(services_[0]->ClockProblem().empty());
  EXPECT_TRUE(release().ToStatus().ok());
}

// A node that lost its copy of a backup is offered, under the same id, a
// manifest re-signed with the coordinator key (other custodians). It asks
// its peers, which hold another manifest for that id: refused and
// alerted. The real manifest (a repair) is taken.
TEST_F(InProcessClusterTest, ABackupIdIsBoundToOneManifestForGood) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  const fs::path data = tmp_.path() / "c/nodes/node-00/data";
  auto units = ReadFileBytes(data / "backups" / BackupIdToText(id) / "fragment", 1 << 30);
  ASSERT_TRUE(units.ok());
  auto share = stores_[0]->ReadShare(id, b->manifest.Hash());
  ASSERT_TRUE(share.ok());
  fs::remove_all(data);
  OpenNode("node-00");
  Manifest evil = b->manifest.manifest();
  auto other = SigningKey::Generate();
  evil.policy.custodians[0].public_key = (*other)->public_key();
  auto signed_evil = SignedManifest::Sign(evil, *coordinator_);
  ASSERT_TRUE(signed_evil.ok());
  auto node_x = X25519PublicFromEd25519(cluster_.nodes[0].public_key);
  auto upload = [&](const SignedManifest& sm) {
    NodeService::Session s(PeerInfo{PeerRole::kCoordinator, "coordinator"});
    Request begin;
    begin.op = Op::kBeginFragment;
    begin.backup_id = id;
    begin.fragment = 0;
    begin.a = sm.manifest().unit_size;
    begin.b = sm.manifest().stripe_count;
    EXPECT_TRUE(services_[0]->Handle(s, begin).ToStatus().ok());
    Request data_msg;
    data_msg.op = Op::kFragmentData;
    data_msg.backup_id = id;
    data_msg.payload = *units;
    EXPECT_TRUE(services_[0]->Handle(s, data_msg).ToStatus().ok());
    Request prep;
    prep.op = Op::kPrepare;
    prep.backup_id = id;
    prep.a = static_cast<uint64_t>(std::time(nullptr) + 600);
    prep.payload = sm.encoded();
    prep.payload2 = *SealToKey(*node_x, *share);
    return services_[0]->Handle(s, prep);
  };
  Response refused = upload(*signed_evil);
  EXPECT_EQ(refused.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message.find("is bound to another manifest (node-01 holds"), std::string::npos)
      << refused.message;
  EXPECT_TRUE(stores_[0]->List().empty());
  Response repaired = upload(b->manifest);
  EXPECT_TRUE(repaired.ToStatus().ok()) << repaired.message;
}

// The check costs m+1 answers, not n-1 calls (n^2 per backup in all), and
// still finds the true manifest when m of the peers asked first lost it:
// the peers after node-00 (node-01, node-02) lose their copies, and node-03,
// the (m+1)-th to answer, holds the true one.
TEST_F(InProcessClusterTest, ABackupIdCheckAsksMPlusOnePeersAndSurvivesMLosses) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  const uint32_t m = b->manifest.manifest().m;
  ASSERT_EQ(m, 2u);
  const fs::path nodes = tmp_.path() / "c/nodes";
  auto units =
      ReadFileBytes(nodes / "node-00/data/backups" / BackupIdToText(id) / "fragment", 1 << 30);
  ASSERT_TRUE(units.ok());
  auto share = stores_[0]->ReadShare(id, b->manifest.Hash());
  ASSERT_TRUE(share.ok());
  for (const char* n : {"node-00", "node-01", "node-02"}) {
    fs::remove_all(nodes / n / "data");
    OpenNode(n);
  }
  Manifest evil = b->manifest.manifest();
  auto other = SigningKey::Generate();
  evil.policy.custodians[0].public_key = (*other)->public_key();
  auto signed_evil = SignedManifest::Sign(evil, *coordinator_);
  ASSERT_TRUE(signed_evil.ok());
  auto node_x = X25519PublicFromEd25519(cluster_.nodes[0].public_key);
  NodeService::Session s(PeerInfo{PeerRole::kCoordinator, "coordinator"});
  Request begin;
  begin.op = Op::kBeginFragment;
  begin.backup_id = id;
  begin.a = evil.unit_size;
  begin.b = evil.stripe_count;
  ASSERT_TRUE(services_[0]->Handle(s, begin).ToStatus().ok());
  Request data_msg;
  data_msg.op = Op::kFragmentData;
  data_msg.backup_id = id;
  data_msg.payload = *units;
  ASSERT_TRUE(services_[0]->Handle(s, data_msg).ToStatus().ok());
  Request prep;
  prep.op = Op::kPrepare;
  prep.backup_id = id;
  prep.a = static_cast<uint64_t>(std::time(nullptr) + 600);
  prep.payload = signed_evil->encoded();
  prep.payload2 = *SealToKey(*node_x, *share);
  manifest_hash_calls_ = 0;
  Response refused = services_[0]->Handle(s, prep);
  EXPECT_NE(refused.message.find("is bound to another manifest (node-03 holds"), std::string::npos)
      << refused.message;
  EXPECT_EQ(manifest_hash_calls_.load(), m + 1);
  // The true manifest: m+1 answers without a conflict, and no more calls.
  NodeService::Session again(PeerInfo{PeerRole::kCoordinator, "coordinator"});
  ASSERT_TRUE(services_[0]->Handle(again, begin).ToStatus().ok());
  ASSERT_TRUE(services_[0]->Handle(again, data_msg).ToStatus().ok());
  prep.payload = b->manifest.encoded();
  manifest_hash_calls_ = 0;
  Response taken = services_[0]->Handle(again, prep);
  EXPECT_TRUE(taken.ToStatus().ok()) << taken.message;
  EXPECT_EQ(manifest_hash_calls_.load(), m + 1);
}

// A node that answers with bad data: `lie` rewrites its successful responses.
struct LyingNode : NodeCaller {
  LyingNode(NodeCaller* inner, std::function<void(Op, Response&)> lie)
      : inner(inner), lie(std::move(lie)) {}
  NodeCaller* inner;
  std::function<void(Op, Response&)> lie;
  const std::string& name() const override { return inner->name(); }
  Result<Response> Call(Request r) override {
    const Op op = r.op;
    auto resp = inner->Call(std::move(r));
    if (resp.ok() && resp->ToStatus().ok()) lie(op, *resp);
    return resp;
  }
};

TEST_F(InProcessClusterTest, LyingNodesAreNamedAndTheRestoreCompletesFromHonestOnes) {
  auto b = Backup();
  ASSERT_TRUE(b.ok());
  const BackupId id = b->manifest.manifest().backup_id;
  // node-00 seals a well-formed share of some other polynomial to the
  // (public) reply key; node-01 alters the fragment units it serves.
  auto other = Deal(3, 6);
  ASSERT_TRUE(other.ok());
  LyingNode bad_share{requesters_[0].get(), [&](Op op, Response& r) {
                        if (op != Op::kRelease) return;
                        r.payload = *SealToKey(reply_.public_key, EncodeShare(other->shares[0]));
                      }};
  LyingNode bad_units{requesters_[1].get(), [](Op op, Response& r) {
                        if (op == Op::kFetchUnits && !r.payload.empty()) {
                          r.payload[r.payload.size() / 2] ^= 0x40;
                        }
                      }};
  liars_ = {&bad_share, &bad_units};
  auto r = Restore(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes, data_);
  std::string problems;
  for (const auto& p : r->problems) problems += p + "\n";
  EXPECT_NE(problems.find("node-00"), std::string::npos) << problems;
  EXPECT_NE(problems.find("commitments"), std::string::npos) << problems;
  EXPECT_NE(problems.find("node-01"), std::string::npos) << problems;
  EXPECT_NE(problems.find("Merkle leaf"), std::string::npos) << problems;

  // With more liars than the margin, the restore fails and writes nothing.
  LyingNode bad_share2{requesters_[2].get(), bad_share.lie};
  LyingNode bad_share3{requesters_[3].get(), bad_share.lie};
  LyingNode bad_share4{requesters_[4].get(), bad_share.lie};
  liars_ = {&bad_share, nullptr, &bad_share2, &bad_share3, &bad_share4};
  auto fail = Restore(id);
  ASSERT_FALSE(fail.ok());
  EXPECT_NE(fail.status().message().find("need 3"), std::string::npos) << fail.status().message();
}

TEST(NodeStoreFallbackTest, StoresAndServesWhereODirectIsUnsupported) {
  // tmpfs refuses O_DIRECT; the store falls back to buffered writes.
  fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  fs::path dir = base / ("qv-store-fallback-" + RandomTag());
  auto coordinator = SigningKey::Generate();
  auto store =
      NodeStore::Open(dir, SecretBytes::Random(32), "node-00", (*coordinator)->public_key());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  BackupId id{7};
  auto up = (*store)->Begin(id, 0, 4096, 3);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  Bytes units(3 * 4096);
  for (size_t i = 0; i < units.size(); ++i) units[i] = static_cast<uint8_t>(i * 31);
  ASSERT_TRUE((*up)->Append(ByteSpan(units.data(), 5000)).ok());  // split mid-unit
  ASSERT_TRUE((*up)->Append(ByteSpan(units.data() + 5000, units.size() - 5000)).ok());
  EXPECT_EQ((*up)->bytes(), units.size());
  up->reset();  // not prepared: discarded
  EXPECT_TRUE((*store)->List().empty());
  store->reset();
  fs::remove_all(dir);
}

TEST_F(InProcessClusterTest, UnitsReadIntoAReusedBufferAreExactlyTheUnits) {
  auto b = Backup();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const Manifest& m = b->manifest.manifest();
  const uint64_t unit = m.unit_size, stripes = m.stripe_count;
  ASSERT_GE(stripes, 3u);
  Bytes file = *ReadFileBytes(
      tmp_.path() / "c/nodes/node-00/data/backups" / BackupIdToText(m.backup_id) / "fragment",
      1u << 30);
  ASSERT_EQ(file.size(), stripes * unit);
  for (uint64_t first : {uint64_t{0}, uint64_t{1}, stripes - 1}) {
    for (uint64_t count : {uint64_t{1}, stripes - first}) {
      const size_t n = count * unit;
      const Bytes want(file.begin() + first * unit, file.begin() + first * unit + n);
      // Stale bytes in a reused buffer, shorter, as long and longer than the
      // read, must all be overwritten or cut off.
      for (size_t reuse_size : {size_t{0}, size_t{1}, n - 1, n, n + 1, file.size() + 300}) {
        auto got = stores_[0]->ReadUnits(m.backup_id, first, count, kHeaderReserve,
                                         Bytes(reuse_size, 0xA5));
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        EXPECT_EQ(*got, want) << "first " << first << " count " << count << " reuse " << reuse_size;
        EXPECT_GE(got->capacity(), n + kHeaderReserve);
      }
    }
  }
  EXPECT_FALSE(stores_[0]->ReadUnits(m.backup_id, stripes - 1, 2, 0, Bytes(64, 1)).ok());
}

TEST_F(InProcessClusterTest, IdentifyMapsPinnedKeysToRoles) {
  auto x = [&](const PublicKey& pk) { return *X25519PublicFromEd25519(pk); };
  EXPECT_EQ(services_[0]->Identify(x(cluster_.coordinator)).role, PeerRole::kCoordinator);
  EXPECT_EQ(services_[0]->Identify(x(cluster_.nodes[3].public_key)).name, "node-03");
  EXPECT_EQ(services_[0]->Identify(x(cluster_.custodians[0].public_key)).role,
            PeerRole::kCustodian);
}

// An enrollment certificate for node `id` (a fresh key) into `members`,
// approved by `approvers`.
Bytes EnrollmentFor(const fs::path& c, const ClusterConfig& members, const std::string& id,
                    const std::vector<std::string>& approvers, PublicKey* key) {
  auto node_key = std::move(SigningKey::Generate()).value();
  *key = node_key->public_key();
  NodeEntry n{id, "site-c", "127.0.0.1", 7499, *key};
  auto op = std::move(SigningKey::Load(c / "operator.key")).value();
  const int64_t now = std::time(nullptr);
  QuorumRequest q = EnrollmentRequest(members, n, members.requesters[0], "spare", now, now + 600);
  randombytes_buf(q.nonce.data(), q.nonce.size());
  SignedRequest sr = std::move(SignedRequest::Sign(q, *op)).value();
  Certificate cert{sr, {}};
  for (const auto& a : approvers) {
    auto k = std::move(SigningKey::Load(c / "custodians" / (a + ".key"))).value();
    cert.approvals.push_back(*Approval::Sign(sr, *k, a, true, "", now));
  }
  return cert.Encode();
}

TEST_F(InProcessClusterTest, ANodePinsAnEnrolledKeyOnlyWithAQuorumForItsMembership) {
  NodeService& node = *services_[0];
  const fs::path c = tmp_.path() / "c";
  PublicKey key{};
  auto x = [](const PublicKey& pk) { return *X25519PublicFromEd25519(pk); };
  Request r;
  r.op = Op::kEnroll;
  // Below quorum: refused, the key stays unknown.
  r.payload = EnrollmentFor(c, cluster_, "node-06", {"c1", "c2"}, &key);
  NodeService::Session op(
      PeerInfo{PeerRole::kRequester, "operator", cluster_.requesters[0].public_key});
  Response below = node.Handle(op, r);
  EXPECT_EQ(below.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(node.Identify(x(key)).role, PeerRole::kUnknown);
  // A custodian cannot carry it (only those who run ceremonies do).
  r.payload = EnrollmentFor(c, cluster_, "node-06", {"c1", "c2", "c3"}, &key);
  NodeService::Session custodian(PeerInfo{PeerRole::kCustodian, "custodian:c1"});
  EXPECT_EQ(node.Handle(custodian, r).ToStatus().code(), StatusCode::kPermissionDenied);
  // A quorum: pinned as a node, kept across a restart of the service.
  Response ok = node.Handle(op, r);
  ASSERT_TRUE(ok.ToStatus().ok()) << ok.message;
  EXPECT_EQ(ok.message, "enrolled");
  EXPECT_EQ(node.Identify(x(key)).role, PeerRole::kNode);
  EXPECT_EQ(node.cluster()->nodes.size(), 7u);
  EXPECT_EQ(node.Handle(op, r).message, "already enrolled");
  auto kept = stores_[0]->Enrollments();
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0], r.payload);
  // Another certificate approved against the membership before it: stale.
  PublicKey other{};
  r.payload = EnrollmentFor(c, cluster_, "node-07", {"c1", "c2", "c3"}, &other);
  Response stale = node.Handle(op, r);
  EXPECT_EQ(stale.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(stale.message.find("another membership"), std::string::npos) << stale.message;
  EXPECT_EQ(node.Identify(x(other)).role, PeerRole::kUnknown);
}

TEST_F(InProcessClusterTest, PendingRequestsExpireWithTheRequestAndVotesNeedARequest) {
  NodeStore& store = *stores_[0];
  BackupId b{};
  b.fill(7);
  const Bytes request = {1, 2, 3};
  EXPECT_EQ(store.AddPendingVote("r1", "c1", AsBytes("vote")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store.AddPending("r1", b, request, 1000, 2000).ok());
  ASSERT_TRUE(store.AddPending("r1", b, request, 1001, 2000).ok());  // kept once
  ASSERT_TRUE(store.AddPendingVote("r1", "c1", AsBytes("yes")).ok());
  ASSERT_TRUE(store.AddPendingVote("r1", "c1", Bytes({2})).ok());  // replaces
  auto live = store.PendingRequests(1500);
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ((*live)[0].received, 1000);
  ASSERT_EQ((*live)[0].approvals.size(), 1u);
  EXPECT_EQ((*live)[0].approvals[0], Bytes({2}));
  EXPECT_TRUE(store.PendingRequests(2001)->empty());
  // A later submission deletes what expired, votes included.
  ASSERT_TRUE(store.AddPending("r2", b, request, 3000, 4000).ok());
  EXPECT_EQ(store.AddPendingVote("r1", "c2", AsBytes("late")).code(), StatusCode::kNotFound);
  ASSERT_EQ(store.PendingRequests(0)->size(), 1u);
}

}  // namespace
}  // namespace qv
