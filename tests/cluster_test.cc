// A real six-node cluster: node processes started by `qv cluster up`, real
// sockets on 127.0.0.1, real SQLite files; attacks made from raw sockets and
// from clients with the wrong keys.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "base/corrupt.h"
#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/cluster_config.h"
#include "coordinator/pipeline.h"
#include "crypto/aead.h"
#include "crypto/secret.h"
#include "crypto/vss.h"
#include "node/audit_log.h"
#include "node/node_client.h"
#include "node/node_store.h"
#include "quorum/request.h"
#include "tests/cluster_fixture.h"
#include "tests/qv_process.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using ::qv::testing::ExpectSameTree;
using ::qv::testing::Outcome;
using ::qv::testing::RunQv;
using ::qv::testing::Slurp;

TEST_F(ClusterTest, BackupAndRestoreAMultiFileModel) {
  ASSERT_EQ(Qv("sample --out model --size 6MiB --shards 3").code, 0);
  std::string id = Backup("model");
  ASSERT_EQ(id.size(), 32u);
  Outcome r = QuorumRestore(id, "restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  Outcome list = Qv("list --cluster cl/cluster.toml --json");
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find(id), std::string::npos);
  Outcome status = Qv("status --cluster cl/cluster.toml");
  EXPECT_EQ(status.code, 0) << status.err;
  // Each node's clock beside this machine's (same machine: within a second).
  Outcome js = Qv("status --cluster cl/cluster.toml --json");
  ASSERT_EQ(js.code, 0) << js.err;
  for (const auto& n : nlohmann::json::parse(js.out)) {
    ASSERT_TRUE(n.contains("clock_skew_s")) << n.dump();
    EXPECT_LE(std::abs(n["clock_skew_s"].get<int64_t>()), 1) << n.dump();
  }
  EXPECT_NE(status.out.find(" s "), std::string::npos) << status.out;
  EXPECT_EQ(status.out.find("clock ?"), std::string::npos) << status.out;
}

TEST_F(ClusterTest, RestoreWithAWholeSiteKilled) {
  ASSERT_EQ(Qv("sample --out model --size 4MiB --shards 2").code, 0);
  std::string id = Backup("model");
  Kill9(0);
  Kill9(1);  // site-a is gone
  Outcome status = Qv("status --cluster cl/cluster.toml");
  EXPECT_EQ(status.code, 1);
  EXPECT_NE(status.err.find("2 of 6 nodes unhealthy or unreachable"), std::string::npos)
      << status.err;
  Outcome r = QuorumRestore(id, "restored", {"c1", "c2", "c3"}, "--json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["reconstructed"].get<bool>());
  ExpectSameTree(dir() / "model", dir() / "restored");
}

TEST_F(ClusterTest, RestoreWithTwoFragmentsCorruptedOnDisk) {
  ASSERT_EQ(Qv("sample --out model --size 4MiB --shards 2").code, 0);
  std::string id = Backup("model");
  for (int i : {1, 3}) {
    ASSERT_TRUE(
        CorruptByte(dir() / "cl/nodes" / NodeId(i) / "data/backups" / id / "fragment", 1000));
  }
  Outcome r = QuorumRestore(id, "restored", {"c1", "c2", "c3"}, "--json");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  // Restore reads the fastest k nodes, so it may never touch the damaged
  // ones; whenever it does, it names exactly them and no one else.
  const auto report = nlohmann::json::parse(r.out);  // outlives the loop over its member
  for (const auto& p : report["problems"]) {
    const std::string msg = p.get<std::string>();
    EXPECT_TRUE(msg.rfind("node-01: fragment 1 unit 0 does not match", 0) == 0 ||
                msg.rfind("node-03: fragment 3 unit 0 does not match", 0) == 0)
        << msg;
  }
  // Reading every fragment (each node's units through its own client) finds both.
  auto key = SigningKey::Load(dir() / "cl/coordinator.key");
  for (int i : {1, 3}) {
    auto c = NodeClient::Connect(cluster_.nodes[i], **key);
    ASSERT_TRUE(c.ok());
    Request get;
    get.op = Op::kFetchUnits;
    get.backup_id = *BackupIdFromText(id);
    get.a = 0;
    get.b = 1;
    auto unit = (*c)->Call(get);
    ASSERT_TRUE(unit.ok());
    Request leaves;
    leaves.op = Op::kGetLeaves;
    leaves.backup_id = get.backup_id;
    auto l = (*c)->Call(leaves);
    ASSERT_TRUE(l.ok());
    Digest leaf;
    std::copy(l->payload.begin(), l->payload.begin() + 32, leaf.begin());
    EXPECT_NE(MerkleLeafHash(unit->payload), leaf) << "node-0" << i << " damage not visible";
  }
}

TEST_F(ClusterTest, ANodeDyingMidUploadFailsTheBackupAndLeavesNothingServed) {
  // A large artifact so the upload is still running when the node dies.
  {
    std::ofstream big(dir() / "big.bin", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7 + 3);
    for (int i = 0; i < 400; ++i) big.write(block.data(), block.size());
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string cmd = "cd '" + dir().string() + "' && '" + qv_ +
                      "' backup --cluster cl/cluster.toml --key cl/coordinator.key big.bin "
                      ">bk.out 2>bk.err </dev/null";
    ::_exit(WEXITSTATUS(std::system(cmd.c_str())));
  }
  // Wait until node-02 has started receiving, then kill it.
  fs::path staging = dir() / "cl/nodes/node-02/data/staging";
  for (int w = 0; w < 500 && (fs::is_empty(staging)); ++w) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9(2);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::string err = Slurp(dir() / "bk.err");
  EXPECT_NE(err.find("node-02"), std::string::npos) << err;
  // Restart the dead node: its leftovers are cleaned, nothing is served.
  Outcome up = Qv("cluster up --dir cl");
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_TRUE(fs::is_empty(staging));
  EXPECT_TRUE(fs::is_empty(dir() / "cl/nodes/node-02/data/backups"));
  Outcome list = Qv("list --cluster cl/cluster.toml --json");
  ASSERT_EQ(list.code, 0);
  EXPECT_EQ(nlohmann::json::parse(list.out).size(), 0u) << list.out;
  EXPECT_NE(Slurp(dir() / "cl/nodes/node-02/node.log").find("cleaned_interrupted_uploads=1"),
            std::string::npos);
}

TEST_F(ClusterTest, PipelinedRequestsAreAnsweredInOrderAndACallWaitsForThem) {
  auto key = SigningKey::Load(dir() / "cl/coordinator.key");
  ASSERT_TRUE(key.ok());
  auto c = NodeClient::Connect(cluster_.nodes[0], **key);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->Receive().status().code(), StatusCode::kFailedPrecondition);
  // Requests for manifests that do not exist: each refusal names its id, so
  // the order of the answers shows.
  std::vector<BackupId> ids(5);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i].fill(static_cast<uint8_t>(0x10 + i));
    Request r;
    r.op = Op::kGetManifest;
    r.backup_id = ids[i];
    ASSERT_TRUE((*c)->Send(r).ok());
  }
  // A call from another thread meanwhile waits for the pipeline to drain
  // and gets its own answer, not one of the pipelined ones.
  Result<Response> health = Internal("not run");
  std::thread other([&] {
    Request r;
    r.op = Op::kHealth;
    health = (*c)->Call(r);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (const BackupId& id : ids) {
    auto resp = (*c)->Receive();
    ASSERT_TRUE(resp.ok()) << resp.status().ToString();
    EXPECT_EQ(resp->ToStatus().code(), StatusCode::kNotFound);
    EXPECT_NE(resp->message.find(BackupIdToText(id)), std::string::npos) << resp->message;
  }
  other.join();
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_TRUE(health->ToStatus().ok()) << health->message;
  EXPECT_EQ((*c)->Receive().status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ClusterTest, AnImpostorKeyGetsNothingAndAWrongNodeKeyIsNotTrusted) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  std::string id = Backup("model");
  auto impostor = SigningKey::Generate();
  auto c = NodeClient::Connect(cluster_.nodes[0], **impostor);
  if (c.ok()) {
    Request r;
    r.op = Op::kRelease;
    r.backup_id = *BackupIdFromText(id);
    // Its only answer says why it gets nothing; then the node hangs up.
    auto resp = (*c)->Call(r);
    if (resp.ok()) {
      EXPECT_EQ(resp->ToStatus().code(), StatusCode::kPermissionDenied);
      EXPECT_NE(resp->message.find("is not pinned in node-00's cluster file"), std::string::npos)
          << resp->message;
      EXPECT_TRUE(resp->payload.empty());
      EXPECT_FALSE((*c)->Call(r).ok()) << "the connection stayed open";
    }
  }
  // The refusal is logged by the node.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(Slurp(dir() / "cl/nodes/node-00/node.log").find("event=refused"), std::string::npos);
  // A custodian key is pinned in the cluster file but is not a node peer:
  // it may check health, post its denials and votes, and read a manifest
  // only while a request about it waits for its approval (none here).
  auto custodian = SigningKey::Load(dir() / "cl/custodians/c1.key");
  auto cc = NodeClient::Connect(cluster_.nodes[0], **custodian);
  ASSERT_TRUE(cc.ok());
  for (Op op : {Op::kListBackups, Op::kGetManifest, Op::kGetLeaves, Op::kGetAudit, Op::kFetchUnits,
                Op::kRelease, Op::kBeginFragment}) {
    Request r;
    r.op = op;
    r.backup_id = *BackupIdFromText(id);
    auto resp = (*cc)->Call(r);
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(resp->ToStatus().code(), StatusCode::kPermissionDenied) << OpName(op);
    EXPECT_TRUE(resp->payload.empty()) << OpName(op);
  }
  // A client that expects another key for node-00 drops the connection.
  NodeEntry wrong = cluster_.nodes[0];
  wrong.public_key = cluster_.nodes[1].public_key;
  auto key = SigningKey::Load(dir() / "cl/coordinator.key");
  auto w = NodeClient::Connect(wrong, **key);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("not the one pinned"), std::string::npos);
  // The real coordinator is still served.
  EXPECT_TRUE(Healthy(0));
}

TEST_F(ClusterTest, GarbageAHugeLengthPrefixAndAStallAreDisconnected) {
  int garbage = RawConnect(3);
  std::string junk(300, 'G');
  ::send(garbage, junk.data(), junk.size(), MSG_NOSIGNAL);
  EXPECT_TRUE(ClosedByServer(garbage));
  ::close(garbage);

  int huge = RawConnect(3);
  const unsigned char prefix[4] = {0xff, 0xff, 0xff, 0xff};  // a 4 GiB frame
  ::send(huge, prefix, 4, MSG_NOSIGNAL);
  EXPECT_TRUE(ClosedByServer(huge));
  ::close(huge);

  int stall = RawConnect(3);  // says nothing at all
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(Healthy(3)) << "a stalled peer must not block others";
  EXPECT_TRUE(ClosedByServer(stall));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(waited, 4.0) << "handshake deadline not enforced";
  ::close(stall);
  EXPECT_TRUE(Healthy(3));
  std::string log = Slurp(dir() / "cl/nodes/node-03/node.log");
  EXPECT_NE(log.find("frame length 4294967295 outside 1..65535"), std::string::npos) << log;
  EXPECT_NE(log.find("handshake timed out"), std::string::npos) << log;
}

}  // namespace
}  // namespace qv

namespace qv {
namespace {

TEST_F(ClusterTest, EveryForgedShortExpiredOrReplayedCertificateIsRefusedAndAudited) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  const std::string id = Backup("model");
  const std::string other = Backup("model/config.json");
  int runs = 0;
  auto run = [&](const std::string& req, const std::vector<std::string>& approvals) {
    std::string args = "restore run --cluster cl/cluster.toml --request " + req;
    for (const auto& a : approvals) args += " --approval " + a;
    return Qv(args + " --dest out-" + std::to_string(++runs));
  };
  auto request = [&](const std::string& out, const std::string& extra = "") {
    Outcome r = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                   " --purpose attack-drill --out " + out + " " + extra);
    ASSERT_EQ(r.code, 0) << r.err;
  };
  auto approve = [&](const std::string& key, const std::string& as, const std::string& req,
                     const std::string& out) { ForgeApproval(key, as, req, out); };
  request("req");
  for (const char* c : {"c1", "c2", "c3", "c4"}) {
    approve(std::string("cl/custodians/") + c + ".key", c, "req", std::string("req.") + c);
  }
  // M-1 approvals: every node refuses with the count.
  Outcome r = run("req", {"req.c1", "req.c2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("0 of 6 reachable nodes released"), std::string::npos) << r.err;
  size_t refusals = 0;
  for (size_t p = r.err.find("below quorum: 2 of 3"); p != std::string::npos;
       p = r.err.find("below quorum: 2 of 3", p + 1)) {
    ++refusals;
  }
  EXPECT_EQ(refusals, 6u) << r.err;
  for (int i = 0; i < 6; ++i) EXPECT_NE(r.err.find(NodeId(i)), std::string::npos) << r.err;
  // A custodian signing twice counts once.
  EXPECT_NE(run("req", {"req.c1", "req.c1", "req.c2"}).err.find("below quorum: 2 of 3"),
            std::string::npos);
  // A key that is no custodian, claiming to be one.
  ASSERT_EQ(Qv("keygen --out stranger.key").code, 0);
  approve("stranger.key", "c7", "req", "req.c7");
  EXPECT_NE(run("req", {"req.c1", "req.c2", "req.c7"}).err.find("unknown custodian c7"),
            std::string::npos);
  // An approval signed over a different request.
  request("req2");
  approve("cl/custodians/c3.key", "c3", "req2", "req2.c3");
  EXPECT_NE(run("req", {"req.c1", "req.c2", "req2.c3"})
                .err.find("approval from c3 is for a different request"),
            std::string::npos);
  // A real custodian's approval with one bit of its signature flipped.
  {
    Bytes bad = *ReadFileBytes(dir() / "req.c3", 1 << 16);
    bad.back() ^= 0x01;
    ASSERT_TRUE(WriteFileAtomic(dir() / "req.c3bad", bad, 0644).ok());
  }
  EXPECT_NE(run("req", {"req.c1", "req.c2", "req.c3bad"}).err.find("bad signature from c3"),
            std::string::npos);
  // An expired request (valid two hours ago, for one hour).
  request("old", "--ttl 1h --valid-from " + std::to_string(std::time(nullptr) - 7200));
  for (const char* c : {"c1", "c2", "c3"}) {
    approve(std::string("cl/custodians/") + c + ".key", c, "old", std::string("old.") + c);
  }
  EXPECT_NE(run("old", {"old.c1", "old.c2", "old.c3"}).err.find("request expired"),
            std::string::npos);
  // The real quorum restores once; the same certificate again, from anyone
  // who cannot prove they hold the request's one-time reply key, is a replay.
  Outcome ok = run("req", {"req.c1", "req.c2", "req.c3"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  for (int i = 0; i < 6; ++i) {
    auto op = SigningKey::Load(dir() / "cl/operator.key");
    auto c = NodeClient::Connect(cluster_.nodes[i], **op);
    ASSERT_TRUE(c.ok());
    Request rel;
    rel.op = Op::kRelease;
    rel.backup_id = *BackupIdFromText(id);
    rel.payload = CertificateFrom("req", {"req.c1", "req.c2", "req.c3"}).Encode();
    rel.payload2 = Bytes(32, 7);  // a made-up proof of the reply key
    auto resp = (*c)->Call(rel);
    ASSERT_TRUE(resp.ok());
    EXPECT_NE(resp->message.find("replayed"), std::string::npos) << resp->message;
    EXPECT_NE(resp->message.find("possible attack"), std::string::npos) << resp->message;
    EXPECT_TRUE(resp->payload.empty());
  }
  // A certificate for this backup presented for another one.
  {
    request("req3");
    for (const char* cu : {"c1", "c2", "c3"}) {
      approve(std::string("cl/custodians/") + cu + ".key", cu, "req3", std::string("req3.") + cu);
    }
    auto resp =
        Present(0, other, CertificateFrom("req3", {"req3.c1", "req3.c2", "req3.c3"}).Encode());
    ASSERT_TRUE(resp.ok());
    EXPECT_NE(resp->message.find("certificate is for backup " + id + ", not " + other),
              std::string::npos)
        << resp->message;
    EXPECT_TRUE(resp->payload.empty());
  }
  // Every refusal is in every node's audit log, with its reason.
  Outcome log = Qv("audit log --cluster cl/cluster.toml --json");
  ASSERT_EQ(log.code, 0) << log.err;
  for (const char* reason :
       {"below quorum: 2 of 3", "unknown custodian c7", "is for a different request",
        "bad signature from c3", "request expired", "replayed", "certificate is for backup"}) {
    EXPECT_NE(log.out.find(reason), std::string::npos) << reason;
  }
  EXPECT_NE(log.out.find("\"kind\":\"replay\""), std::string::npos);
  EXPECT_EQ(Qv("audit verify --cluster cl/cluster.toml").code, 0);
}

TEST_F(ClusterTest, RequesterApprovingOwnRequestIsRefused) {
  // c5 was a custodian when the backup was taken, and later moved to the
  // requesters (a cluster file lists each key once, but a backup's signed
  // policy keeps its custodians): separation of duties must still hold.
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  Qv("cluster down --dir cl");
  auto config = ClusterConfig::Load(dir() / "cl/cluster.toml");
  ASSERT_TRUE(config.ok());
  Principal c5 = config->custodians.back();
  config->custodians.pop_back();
  config->requesters.push_back({"c5-ops", c5.public_key});
  ASSERT_TRUE(WriteFileAtomic(dir() / "cl/cluster.toml", AsBytes(config->ToToml()), 0600).ok());
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  ASSERT_EQ(Qv("restore request --cluster cl/cluster.toml --key cl/custodians/c5.key --backup " +
               id + " --purpose self --out req")
                .code,
            0);
  std::string approvals;
  // qv approve will not sign it for c5 (it is the requester)...
  Outcome own =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c5.key req --out req.c5");
  EXPECT_EQ(own.code, 1);
  EXPECT_NE(own.err.find("a requester cannot approve"), std::string::npos) << own.err;
  EXPECT_FALSE(fs::exists(dir() / "req.c5"));
  // ...so c5 signs one with the library, as a hostile insider would.
  for (const char* c : {"c5", "c1", "c2"}) {
    ForgeApproval(std::string("cl/custodians/") + c + ".key", c, "req", std::string("req.") + c);
    approvals += std::string(" --approval req.") + c;
  }
  Outcome r = Qv("restore run --cluster cl/cluster.toml --key cl/custodians/c5.key --request req" +
                 approvals + " --dest out");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("requester approved own request"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir() / "out"));
}

TEST_F(ClusterTest, AuditVerifyNamesEditedDeletedReorderedAndTruncatedLogs) {
  WitnessEvery(1000);
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(QuorumRestore(id, "restored").code, 0);
  ASSERT_EQ(Qv("audit verify --cluster cl/cluster.toml").code, 0);
  // Give the witnesses time to countersign, then stop (final checkpoints).
  AwaitWitnessRound();
  Qv("cluster down --dir cl");
  auto edit = [&](int node, const std::string& sql) {
    sqlite3* db = nullptr;
    const fs::path f = dir() / "cl/nodes" / NodeId(node) / "data/audit.db";
    ASSERT_EQ(sqlite3_open(f.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
    EXPECT_GT(sqlite3_changes(db), 0) << sql;
    sqlite3_close(db);
  };
  edit(0, "UPDATE audit SET detail = 'nothing to see' WHERE kind = 'release'");
  edit(1, "DELETE FROM audit WHERE seq = 3");
  edit(2,
       "UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4; "
       "UPDATE audit SET seq = 4 WHERE seq = -1");
  edit(3, "DELETE FROM audit WHERE seq > 5; DELETE FROM checkpoints WHERE seq > 5");
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Outcome v = Qv("audit verify --cluster cl/cluster.toml");
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.out.find("node-00    TAMPERED OR MISSING: entry"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("node-01    TAMPERED OR MISSING: entry 3"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("node-02    TAMPERED OR MISSING: entry 3"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("node-03: "), std::string::npos) << v.out;  // witnesses: truncated
  EXPECT_NE(v.out.find("truncated"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("node-04    chain intact"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("AUDIT FAILED"), std::string::npos);
}

// An insider re-writes node-02's history to hide a release and re-signs every
// checkpoint with node-02's own (stolen) key. The forged chain is consistent
// by itself, so only the other nodes' witness records can catch it: both
// `qv audit verify` and the witnesses' next round (an audited alert) do.
TEST_F(ClusterTest, HistoryRewrittenAndResignedWithTheStolenNodeKeyIsCaughtByWitnesses) {
  WitnessEvery(1000);
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(QuorumRestore(id, "first").code, 0);
  // A second restore pushes node-02's log past a checkpoint after the first
  // release, and the wait lets every witness countersign it.
  ASSERT_EQ(QuorumRestore(id, "second").code, 0);
  AwaitWitnessRound();
  Qv("cluster down --dir cl");

  const fs::path db = dir() / "cl/nodes/node-02/data/audit.db";
  auto stolen = SigningKey::Load(dir() / "cl/nodes/node-02/node.key");
  ASSERT_TRUE(stolen.ok());
  FakeClock clock(0);
  std::vector<AuditEntry> entries;
  std::vector<Checkpoint> checkpoints;
  std::vector<WitnessRecord> held;
  {
    auto log = AuditLog::Open(db, "node-02", stolen->get(), &clock, 4);
    ASSERT_TRUE(log.ok());
    entries = *(*log)->Entries(1, 1 << 20);
    checkpoints = *(*log)->Checkpoints();
    held = *(*log)->Witnessed();
  }
  uint64_t release_seq = 0;
  for (const auto& e : entries) {
    if (e.event.kind == "release" && release_seq == 0) release_seq = e.seq;
  }
  ASSERT_GT(release_seq, 0u) << "node-02 released nothing";
  // Precondition: some peer countersigned a checkpoint covering the release.
  bool covered = false;
  for (int w = 0; w < 6 && !covered; ++w) {
    if (w == 2) continue;
    auto log = AuditLog::Open(dir() / "cl/nodes" / NodeId(w) / "data/audit.db", NodeId(w), nullptr,
                              &clock, 4);
    ASSERT_TRUE(log.ok());
    auto last = (*log)->LastWitnessed("node-02");
    covered = last && last->seq >= release_seq;
  }
  ASSERT_TRUE(covered) << "no witness covered entry " << release_seq;

  // The forgery: same length, the release turned into a refusal, every hash
  // recomputed, every checkpoint re-signed at its original entry and time.
  const fs::path forged_db = dir() / "forged.db";
  {
    auto forged = AuditLog::Open(forged_db, "node-02", stolen->get(), &clock, 1 << 30);
    ASSERT_TRUE(forged.ok());
    size_t next_cp = 0;
    for (auto e : entries) {
      if (e.seq == release_seq) {
        e.event.kind = "refusal";
        e.event.detail = "below quorum: 0 of 3";
      }
      clock.Set(e.time);
      ASSERT_TRUE((*forged)->Append(e.event).ok());
      if (next_cp < checkpoints.size() && checkpoints[next_cp].seq == e.seq) {
        clock.Set(checkpoints[next_cp++].time);
        ASSERT_TRUE((*forged)->SignCheckpoint().ok());
      }
    }
    for (const auto& r : held) ASSERT_TRUE((*forged)->RecordWitness(r).ok());
  }
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(db.string() + suffix);
  fs::rename(forged_db, db);

  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Outcome v = Qv("audit verify --cluster cl/cluster.toml");
  EXPECT_EQ(v.code, 1) << v.out;
  // The forged chain alone looks intact; the witnesses say otherwise.
  EXPECT_NE(v.out.find("node-02    chain intact"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("node-02: entry"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("(history rewritten)"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("AUDIT FAILED"), std::string::npos) << v.out;

  // Running witnesses notice too, and record it in their own logs.
  bool alerted = false;
  for (int tries = 0; tries < 50 && !alerted; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Outcome log = Qv("audit log --cluster cl/cluster.toml --json");
    alerted = log.out.find("does not extend the history witnessed") != std::string::npos;
  }
  EXPECT_TRUE(alerted);
  // Once per witness, not once per round: the alert must not flood the logs.
  AwaitWitnessRound();
  std::string trail = Qv("audit log --cluster cl/cluster.toml --json").out;
  size_t alerts = 0;
  for (size_t p = 0;
       (p = trail.find("does not extend the history witnessed", p)) != std::string::npos; ++p) {
    ++alerts;
  }
  EXPECT_GE(alerts, 1u);
  EXPECT_LE(alerts, 5u);
}

// Thieves copy every node's data directory (the fragments are ciphertext)
// and the master and identity keys of up to t-1 nodes. Those shares do not
// open the backup: Combine refuses fewer than t, and interpolating them
// anyway yields a key that fails authentication on the first chunk, while
// t shares (the control) open it.
TEST_F(ClusterTest, AStolenNodeOrTMinusOneColludingNodesCannotDecrypt) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  auto id = BackupIdFromText(Backup("model"));
  ASSERT_TRUE(id.ok());
  Qv("cluster down --dir cl");
  fs::create_directories(dir() / "loot");
  for (int i = 0; i < 6; ++i) {
    fs::copy(dir() / "cl/nodes" / NodeId(i), dir() / "loot" / NodeId(i),
             fs::copy_options::recursive);
  }
  auto open = [&](int i, SecretBytes master) {
    auto s = NodeStore::Open(dir() / "loot" / NodeId(i) / "data", std::move(master), NodeId(i),
                             cluster_.coordinator);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  };
  auto master = [&](int i) {
    return std::move(ReadSecretFile(dir() / "loot" / NodeId(i) / "master.key", 32)).value();
  };
  // A data directory does not even open under another node's master key,
  // nor when the thief also deletes its key-check value (a share is tried).
  EXPECT_FALSE(
      NodeStore::Open(dir() / "loot/node-00/data", master(1), NodeId(0), cluster_.coordinator)
          .ok());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir() / "loot/node-00/data/meta.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DELETE FROM meta", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto forced =
      NodeStore::Open(dir() / "loot/node-00/data", master(1), NodeId(0), cluster_.coordinator);
  ASSERT_FALSE(forced.ok());
  EXPECT_NE(forced.status().message().find("does not open this node's shares"), std::string::npos)
      << forced.status().ToString();

  auto store0 = open(0, master(0));
  auto sm = SignedManifest::Parse(*store0->Manifest(*id), &cluster_.coordinator);
  ASSERT_TRUE(sm.ok());
  const Manifest& m = sm->manifest();
  ASSERT_EQ(m.t, 3u);
  // The first chunk's ciphertext: unit 0 of each data fragment.
  Bytes chunk0(size_t{m.k} * m.unit_size);
  uint32_t units = 0;
  for (int i = 0; i < 6; ++i) {
    auto store = open(i, master(i));
    for (const auto& b : store->List()) {
      if (b.id != *id || b.fragment >= m.k) continue;
      Bytes u = *store->ReadUnits(*id, 0, 1);
      ASSERT_EQ(u.size(), m.unit_size);
      std::copy(u.begin(), u.end(), chunk0.begin() + size_t{b.fragment} * m.unit_size);
      ++units;
    }
  }
  ASSERT_EQ(units, m.k);
  chunk0.resize(m.ChunkPlaintextSize(0) + kAeadTagSize);
  auto opens = [&](const SecretBytes& secret) {
    auto cipher = ChunkCipher::New(m.cipher, DataKey(secret, m.backup_id, m.cipher), m.backup_id);
    Bytes plain(chunk0.size() - kAeadTagSize);
    return cipher.ok() && (*cipher)->Open(0, m.stripe_count == 1, chunk0, plain.data()).ok();
  };
  std::vector<Share> shares;
  for (int i = 0; i < 3; ++i) {
    auto enc = open(i, master(i))->ReadShare(*id, sm->Hash());
    ASSERT_TRUE(enc.ok());
    shares.push_back(std::move(DecodeShare(enc->span())).value());
  }
  for (size_t held = 1; held < m.t; ++held) {
    std::span<const Share> few(shares.data(), held);
    auto combined = Combine(few, m.commitments);
    EXPECT_EQ(combined.status().code(), StatusCode::kFailedPrecondition) << held;
    auto forced = InterpolateAtZero(few);
    ASSERT_TRUE(forced.ok());
    EXPECT_FALSE(opens(*forced)) << held << " shares opened the backup";
  }
  auto enough = Combine(shares, m.commitments);
  ASSERT_TRUE(enough.ok());
  EXPECT_TRUE(opens(enough->secret));
}

// `qv drill run --live`: the drills that need no simulator run against the
// real node processes (kill -9, disks deleted); the others are skipped,
// never passed.
TEST_F(ClusterTest, LiveDrillsRunOnRealProcessesAndSimulatorOnlyOnesAreSkipped) {
  const std::string drills = std::string(QV_SOURCE_DIR) + "/configs/drills/";
  std::string files;
  for (const char* d : {"site-lost-then-restore", "replayed-certificate",
                        "rogue-admin-one-approval", "impersonation", "replaced-master-key",
                        "denial-left-out", "two-sites-lost", "torn-writes"}) {
    files += " " + drills + d + ".toml";
  }
  Outcome r = Qv("drill run --live --cluster cl/cluster.toml --json" + files);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["drills"].size(), 8u);
  std::map<std::string, std::string> result;
  for (const auto& d : j["drills"]) result[d["name"]] = d["result"];
  EXPECT_EQ(result["site-lost-then-restore"], "PASS") << r.out;
  EXPECT_EQ(result["replayed-certificate"], "PASS") << r.out;
  EXPECT_EQ(result["rogue-admin-one-approval"], "PASS") << r.out;
  EXPECT_EQ(result["two-sites-lost"], "PASS") << r.out;
  EXPECT_EQ(result["impersonation"], "PASS") << r.out;
  EXPECT_EQ(result["replaced-master-key"], "PASS") << r.out;
  EXPECT_EQ(result["denial-left-out"], "PASS") << r.out;
  EXPECT_EQ(result["torn-writes"], "SKIP") << r.out;
  // The evidence is the real nodes' audit entries.
  EXPECT_NE(r.out.find("replay (operator): replayed: request"), std::string::npos) << r.out;
  EXPECT_EQ(Qv("drill run --live " + drills + "stolen-node.toml").code, 2);
}

// qv scrub on real processes: healthy, then a flipped byte and a killed
// node are named, the backup is at risk, and the exit status says so.
TEST_F(ClusterTest, ScrubNamesCorruptAndMissingFragmentsOnRealNodes) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  const std::string id = Backup("model");
  Outcome ok = Qv("scrub --cluster cl/cluster.toml");
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("healthy   fragments 6/6 good (k=4), shares 6/6 proved (t=3)"),
            std::string::npos)
      << ok.out;
  // One pass at --sample 1 covers every unit; the nodes remember it.
  Outcome full = Qv("scrub --cluster cl/cluster.toml --sample 1");
  EXPECT_NE(full.out.find("coverage: 1 full pass(es) over every unit"), std::string::npos)
      << full.out;
  EXPECT_NE(full.out.find("its last full pass ended 20"), std::string::npos) << full.out;
  ASSERT_TRUE(CorruptByte(dir() / "cl/nodes/node-01/data/backups" / id / "fragment", 100));
  ASSERT_EQ(::kill(std::atoi(Slurp(dir() / "cl/nodes/node-04/node.pid").c_str()), SIGKILL), 0);
  Outcome bad = Qv("scrub --cluster cl/cluster.toml --sample 1 --backup " + id);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("at risk"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("node-01 (fragment 1): unit 0 does not match the fragment's signed root"),
            std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find("node-04 (fragment 4): unreachable"), std::string::npos) << bad.out;
  Outcome json = Qv("scrub --cluster cl/cluster.toml --sample 1 --json");
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j[0]["state"], "at risk");
  EXPECT_EQ(j[0]["good_fragments"], 4);
  EXPECT_EQ(Qv("scrub --cluster cl/cluster.toml --sample 2").code, 2);
}

// Repair on real processes (issue 15): six nodes in three sites hold the
// backup, two spares on a site of their own wait.
class SpareClusterTest : public ClusterTest {
 protected:
  std::string InitFlags() const override { return " --spares 2"; }
  Outcome Repair(const std::string& id, const std::string& name, const std::string& flags = "") {
    Outcome r = Qv("repair request --cluster cl/cluster.toml --backup " + id +
                   " --purpose 'site lost' --out " + name + flags);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string approvals;
    for (const char* c : {"c1", "c2", "c3"}) {
      const std::string out = name + "." + c;
      Outcome a = Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/" +
                     std::string(c) + ".key " + name + " --out " + out);
      EXPECT_EQ(a.code, 0) << a.err;
      approvals += " --approval " + out;
    }
    return Qv("repair run --cluster cl/cluster.toml --request " + name + approvals);
  }
};

TEST_F(SpareClusterTest, ASiteKilledIsRepairedOntoSparesAndASecondSiteLossStillRestores) {
  ASSERT_EQ(Qv("sample --out model --size 3MiB --shards 2").code, 0);
  const std::string id = Backup("model");
  Kill9(0);
  Kill9(1);  // site-a is gone
  Outcome before = Qv("scrub --cluster cl/cluster.toml");
  EXPECT_EQ(before.code, 1);
  EXPECT_NE(before.out.find("at risk"), std::string::npos) << before.out;
  EXPECT_NE(before.out.find("node-00 (fragment 0): unreachable"), std::string::npos) << before.out;
  Outcome req = Qv("repair request --cluster cl/cluster.toml --backup " + id +
                   " --purpose 'site-a lost' --out peek --json");
  ASSERT_EQ(req.code, 0) << req.err;
  EXPECT_EQ(nlohmann::json::parse(req.out)["plan"], "fragment 0 to node-06; fragment 1 to node-07");
  Outcome run = Repair(id, "fix");
  ASSERT_EQ(run.code, 0) << run.err << run.out;
  EXPECT_NE(run.out.find("2 share(s) rebuilt by share recovery, manifest revision 1 on 4 other"),
            std::string::npos)
      << run.out;
  Outcome after = Qv("scrub --cluster cl/cluster.toml --sample 1");
  EXPECT_EQ(after.code, 0) << after.out << after.err;
  EXPECT_NE(after.out.find("healthy   fragments 6/6 good (k=4), shares 6/6 proved (t=3)"),
            std::string::npos)
      << after.out;
  Outcome show = Qv("show --cluster cl/cluster.toml --backup " + id);
  EXPECT_NE(show.out.find("revision 1"), std::string::npos) << show.out;
  // Run again, the repair finds everything done: nothing rebuilt twice.
  Outcome again =
      Qv("repair run --cluster cl/cluster.toml --request fix --approval fix.c1 "
         "--approval fix.c2 --approval fix.c3");
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find(", 0 share(s) rebuilt"), std::string::npos) << again.out;
  Kill9(2);
  Kill9(3);  // and site-b
  Outcome r = QuorumRestore(id, "restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
}

TEST_F(SpareClusterTest, ACorruptFragmentIsNamedByScrubAndFixedInPlace) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_TRUE(CorruptByte(dir() / "cl/nodes/node-03/data/backups" / id / "fragment", 10));
  Outcome bad = Qv("scrub --cluster cl/cluster.toml --sample 1");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("node-03 (fragment 3): unit 0 does not match"), std::string::npos)
      << bad.out;
  Outcome run = Repair(id, "fix");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.out.find("manifest revision 0"), std::string::npos) << run.out;
  EXPECT_EQ(Qv("scrub --cluster cl/cluster.toml --sample 1").code, 0);
}

TEST_F(SpareClusterTest, ADecommissionedNodesCopyMovesToASpareAndIsWipedOnTheNode) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  const std::string id = Backup("model");
  Outcome run = Repair(id, "retire", " --decommission node-02");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.out.find("1 node(s) wiped their copy"), std::string::npos) << run.out;
  EXPECT_FALSE(fs::exists(dir() / "cl/nodes/node-02/data/backups" / id));
  Outcome show = Qv("show --cluster cl/cluster.toml --backup " + id);
  EXPECT_NE(show.out.find("fragment 2 node-02 -> node-06"), std::string::npos) << show.out;
  EXPECT_EQ(Qv("scrub --cluster cl/cluster.toml --sample 1").code, 0);
  Outcome audit = Qv("audit verify --cluster cl/cluster.toml");
  EXPECT_EQ(audit.code, 0) << audit.out << audit.err;
  Kill9(2);
  Kill9(0);
  Kill9(1);
  Outcome r = QuorumRestore(id, "restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
}

// Node replacement, the enrollment half: a new node's key joins the cluster
// only through a quorum of custodians that every node checks; a cluster file
// edited to list it without one stops the node that reads it.
class EnrollClusterTest : public ClusterTest {
 protected:
  Outcome Approve(const std::string& req, const std::string& custodian) {
    return Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/" + custodian + ".key " +
              req + " --out " + req + "." + custodian);
  }
  // node run for node `i`, bounded: a node that should refuse to start and
  // does not is killed after 20 s (and the test fails on its exit code).
  Outcome StartAlone(int i) {
    const std::string cmd = "cd '" + dir().string() + "' && timeout 20 '" + qv_ +
                            "' node run --config cl/nodes/" + NodeId(i) +
                            "/node.toml >alone.out 2>&1 </dev/null";
    const int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, "", Slurp(dir() / "alone.out")};
  }
};

TEST_F(EnrollClusterTest, ANewNodeJoinsOnlyByQuorumAndTakesADecommissionedNodesPlace) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  const std::string id = Backup("model");
  const std::string port = std::to_string(base_port_ + 6);
  Outcome add = Qv("cluster add-node --dir cl --id node-06 --site site-c --port " + port);
  ASSERT_EQ(add.code, 0) << add.err;
  ASSERT_NE(add.out.find("ed25519:"), std::string::npos) << add.out;
  const std::string key = add.out.substr(add.out.find("ed25519:"), 8 + 64);
  const std::string original = Slurp(dir() / "cl/cluster.toml");

  // Attack: the cluster file edited to pin the new key without a quorum.
  // A node that reads it refuses to start, naming why.
  Kill9(0);
  std::ofstream(dir() / "cl/cluster.toml", std::ios::app)
      << "\n[[nodes]]\nid = \"node-06\"\nsite = \"site-c\"\nhost = \"127.0.0.1\"\nport = " << port
      << "\npublic_key = \"" << key << "\"\n";
  Outcome forged = StartAlone(0);
  EXPECT_EQ(forged.code, 1) << forged.err;
  EXPECT_NE(forged.err.find("no quorum enrolled the difference"), std::string::npos) << forged.err;
  std::ofstream(dir() / "cl/cluster.toml", std::ios::trunc) << original;
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);

  // Below quorum: nothing is sent, the file is unchanged.
  Outcome req =
      Qv("cluster enroll request --cluster cl/cluster.toml --node-id node-06 --site "
         "site-c --address 127.0.0.1:" +
         port + " --node-key " + key + " --purpose 'replace node-02' --out enroll.req");
  ASSERT_EQ(req.code, 0) << req.err;
  for (const char* c : {"c1", "c2", "c3"}) ASSERT_EQ(Approve("enroll.req", c).code, 0);
  Outcome few =
      Qv("cluster enroll run --cluster cl/cluster.toml --request enroll.req --approval "
         "enroll.req.c1 --approval enroll.req.c2");
  EXPECT_EQ(few.code, 1);
  EXPECT_NE(few.err.find("below quorum: 2 of 3"), std::string::npos) << few.err;
  EXPECT_EQ(Slurp(dir() / "cl/cluster.toml"), original);
  // The same short certificate sent straight to a node, past qv's own
  // check: the node refuses it and audits the refusal.
  {
    auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / "enroll.req", 1 << 16));
    ASSERT_TRUE(sr.ok());
    Certificate cert{*sr, {}};
    for (const char* c : {"c1", "c2"}) {
      auto a = Approval::Parse(*ReadFileBytes(dir() / ("enroll.req." + std::string(c)), 1 << 16));
      ASSERT_TRUE(a.ok());
      cert.approvals.push_back(*a);
    }
    auto op = SigningKey::Load(dir() / "cl/operator.key");
    auto client = NodeClient::Connect(cluster_.nodes[3], **op);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    Request r;
    r.op = Op::kEnroll;
    r.payload = cert.Encode();
    auto resp = (*client)->Call(r);
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(resp->ToStatus().code(), StatusCode::kPermissionDenied);
    EXPECT_NE(resp->message.find("below quorum: 2 of 3"), std::string::npos) << resp->message;
    Outcome log = Qv("audit log --cluster cl/cluster.toml");
    EXPECT_NE(log.out.find("enroll: below quorum: 2 of 3"), std::string::npos) << log.out;
  }

  // A quorum: every node checks it and pins the key; the file carries it.
  Outcome run =
      Qv("cluster enroll run --cluster cl/cluster.toml --request enroll.req --approval "
         "enroll.req.c1 --approval enroll.req.c2 --approval enroll.req.c3");
  ASSERT_EQ(run.code, 0) << run.err << run.out;
  EXPECT_NE(run.out.find("node node-06 enrolled by 6 of 6 nodes"), std::string::npos) << run.out;
  auto updated = ClusterConfig::Load(dir() / "cl/cluster.toml");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  ASSERT_EQ(updated->nodes.size(), 7u);
  EXPECT_EQ(updated->enrollments.size(), 1u);
  // Presented again: already enrolled everywhere, nothing changes.
  Outcome again =
      Qv("cluster enroll run --cluster cl/cluster.toml --request enroll.req --approval "
         "enroll.req.c1 --approval enroll.req.c2 --approval enroll.req.c3");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("another membership"), std::string::npos) << again.err;

  nodes_ = 7;
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  // A node restarted reads the certificate from the file and starts.
  Kill9(1);
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);

  // The new node takes node-02's place; node-02's copy is wiped.
  Outcome rq = Qv("repair request --cluster cl/cluster.toml --backup " + id +
                  " --decommission node-02 --purpose 'retire node-02' --out retire");
  ASSERT_EQ(rq.code, 0) << rq.err;
  std::string approvals;
  for (const char* c : {"c1", "c2", "c3"}) {
    ASSERT_EQ(Approve("retire", c).code, 0);
    approvals += std::string(" --approval retire.") + c;
  }
  Outcome fix = Qv("repair run --cluster cl/cluster.toml --request retire" + approvals);
  ASSERT_EQ(fix.code, 0) << fix.err << fix.out;
  Outcome show = Qv("show --cluster cl/cluster.toml --backup " + id);
  EXPECT_NE(show.out.find("fragment 2 node-02 -> node-06"), std::string::npos) << show.out;
  Outcome audit = Qv("audit verify --cluster cl/cluster.toml");
  EXPECT_EQ(audit.code, 0) << audit.out << audit.err;
  EXPECT_NE(Slurp(dir() / "cl/nodes/node-03/node.log").find("event=enroll node=node-06"),
            std::string::npos);
  Kill9(2);
  Kill9(0);
  Outcome r = QuorumRestore(id, "restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
}

// Problems with `text` as Prometheus text exposition format 0.0.4: every
// line a HELP, a TYPE (once per metric, before its samples, of a known
// type) or a sample `name{label="value",...} number`; none when it is good.
// A hand-written reader of the format's line grammar (std::regex trips
// GCC 12's maybe-uninitialized warning under the sanitizers).
struct LineReader {
  std::string_view s;
  size_t i = 0;
  bool More() const { return i < s.size(); }
  bool Eat(char c) {
    if (More() && s[i] == c) return ++i, true;
    return false;
  }
  // [a-zA-Z_:][a-zA-Z0-9_:]* (colons only when `colons`).
  std::string Name(bool colons) {
    const size_t start = i;
    auto ok = [&](char c, bool first) {
      return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (colons && c == ':') ||
             (!first && std::isdigit(static_cast<unsigned char>(c)));
    };
    while (More() && ok(s[i], i == start)) ++i;
    return std::string(s.substr(start, i - start));
  }
  bool Quoted() {
    if (!Eat('"')) return false;
    while (More() && s[i] != '"') {
      if (s[i] == '\n') return false;
      if (s[i] == '\\') ++i;
      ++i;
    }
    return Eat('"');
  }
  bool Number() {
    Eat('-');
    size_t digits = 0;
    while (More() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
    if (Eat('.')) {
      while (More() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    }
    if (Eat('e') || Eat('E')) {
      if (!Eat('+')) Eat('-');
      while (More() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    }
    return digits > 0;
  }
};

// Problems with `text` as Prometheus text exposition format 0.0.4: every
// line a HELP, a TYPE (once per metric, before its samples, of a known
// type) or a sample `name{label="value",...} number`; none when it is good.
std::vector<std::string> PrometheusProblems(const std::string& text) {
  std::vector<std::string> problems;
  std::map<std::string, std::string> types;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    LineReader r{line};
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      r.i = 7;
      const std::string name = r.Name(true);
      if (name.empty() || !r.Eat(' ')) {
        problems.push_back("bad comment: " + line);
        continue;
      }
      if (line[2] == 'T') {
        const std::string type = line.substr(r.i);
        static const std::set<std::string> known = {"counter", "gauge", "summary", "histogram",
                                                    "untyped"};
        if (!known.count(type)) problems.push_back("unknown type: " + line);
        if (!types.emplace(name, type).second) problems.push_back("second TYPE: " + line);
      }
      continue;
    }
    std::string name = r.Name(true);
    bool ok = !name.empty();
    if (ok && r.Eat('{')) {
      do {
        ok = !r.Name(false).empty() && r.Eat('=') && r.Quoted();
      } while (ok && r.Eat(','));
      ok = ok && r.Eat('}');
    }
    ok = ok && r.Eat(' ') && r.Number() && !r.More();
    if (!ok) {
      problems.push_back("not exposition format: " + line);
      continue;
    }
    for (const std::string sfx : {"_sum", "_count"}) {
      if (!types.count(name) && name.size() > sfx.size() &&
          name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
        name = name.substr(0, name.size() - sfx.size());
      }
    }
    if (!types.count(name)) problems.push_back("sample before its TYPE: " + line);
  }
  if (!text.empty() && text.back() != '\n') problems.push_back("no final newline");
  return problems;
}

TEST(PrometheusFormatTest, TheCheckerRefusesWhatIsNotTheFormat) {
  EXPECT_TRUE(PrometheusProblems("# HELP a b\n# TYPE a counter\na{x=\"1\"} 2\n").empty());
  for (const char* bad :
       {"a 1\n", "# TYPE a counter\na{x=1} 2\n", "# TYPE a counter\na 1 2 3\n",
        "# TYPE a count\na 1\n", "# TYPE a gauge\n# TYPE a gauge\na 1\n", "# TYPE a gauge\na 1",
        "# TYPE a counter\na{x=\"1\" 2\n", "# TYPE a counter\na{=\"1\"} 2\n",
        "# TYPE a counter\na{x=\"1\"} -\n", "# TYPE a gauge\na 1x\n"}) {
    EXPECT_FALSE(PrometheusProblems(bad).empty()) << bad;
  }
}

TEST_F(ClusterTest, NodesWriteMetricsInThePrometheusTextFormatAndStatusSummarizesThem) {
  WitnessEvery(1000);
  RestartNodesWith("metrics_file = \"metrics.prom\"\nmetrics_interval_s = 1\n");
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(QuorumRestore(id, "restored").code, 0);
  const fs::path f = dir() / "cl/nodes/node-01/metrics.prom";
  std::string text;
  for (int wait = 0; wait < 100; ++wait) {
    text = Slurp(f);
    if (text.find("qv_release_seconds_count{node=\"node-01\"} 1") != std::string::npos &&
        text.find("qv_witness_lag_seconds{node=\"node-01\",peer=\"node-00\"}") !=
            std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(text.find("qv_release_seconds_count{node=\"node-01\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("qv_requests_total{node=\"node-01\",kind=\"release\",outcome=\"ok\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("qv_backups{node=\"node-01\",state=\"published\"} 1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("qv_witness_lag_seconds{node=\"node-01\",peer=\"node-00\"}"),
            std::string::npos)
      << text;
  const auto problems = PrometheusProblems(text);
  EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << text;
  // No secret or payload reaches it: only names, counts and sizes.
  EXPECT_EQ(text.find(id), std::string::npos);
  // qv status says the same at a glance.
  Outcome st = Qv("status --cluster cl/cluster.toml");
  ASSERT_EQ(st.code, 0) << st.err;
  EXPECT_NE(st.out.find("6 of 6 nodes up; 1 backup(s);"), std::string::npos) << st.out;
  EXPECT_EQ(st.out.find("last witness round never"), std::string::npos) << st.out;
  Outcome js = Qv("status --cluster cl/cluster.toml --json");
  auto j = nlohmann::json::parse(js.out);
  ASSERT_EQ(j.size(), 6u);
  for (const auto& n : j) {
    EXPECT_EQ(n["backups_published"], 1) << js.out;
    EXPECT_GT(n["stored_bytes"].get<uint64_t>(), 0u);
    EXPECT_GT(n["free_bytes"].get<uint64_t>(), 0u);
    EXPECT_EQ(n["audit_alerts"], 0);
  }
}

// A node's master key under a SoftHSM2 token (issue 16): the node restarts
// and releases with the token, and its data folder and config alone (no
// token, or a wrong PIN) open nothing: the node does not start.
TEST_F(ClusterTest, ANodeWhoseMasterKeyIsInATokenReleasesOnlyWithTheToken) {
  UseSoftHsm({"qv"});
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(Qv("cluster down --dir cl").code, 0);
  Outcome wrap =
      Qv("node wrap-master-key --config cl/nodes/node-00/node.toml --pkcs11 "
         "'pkcs11:token=qv;object=node-00'");
  ASSERT_EQ(wrap.code, 0) << wrap.err;
  EXPECT_FALSE(fs::exists(dir() / "cl/nodes/node-00/master.key"));
  EXPECT_TRUE(fs::exists(dir() / "cl/nodes/node-00/master.key.wrapped"));
  Outcome up = Qv("cluster up --dir cl");
  ASSERT_EQ(up.code, 0) << up.err << Slurp(dir() / "cl/nodes/node-00/node.toml")
                        << Slurp(dir() / "cl/nodes/node-00/node.log");
  // Kill two other nodes: the restore needs node-00's share (t = 3 of 4).
  Kill9(4);
  Kill9(5);
  Outcome r = QuorumRestore(id, "restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  ASSERT_EQ(Qv("cluster down --dir cl").code, 0);
  auto start_alone = [&] {
    const std::string cmd = "cd '" + dir().string() + "' && timeout 20 '" + qv_ +
                            "' node run --config cl/nodes/node-00/node.toml >alone.out 2>&1";
    const int rc = std::system(cmd.c_str());
    return std::make_pair(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, Slurp(dir() / "alone.out"));
  };
  ::setenv("SOFTHSM2_CONF", (dir() / "no-token.conf").c_str(), 1);
  auto [code, out] = start_alone();
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("no PKCS#11 token labelled qv"), std::string::npos) << out;
  ::setenv("SOFTHSM2_CONF", (dir() / "softhsm2.conf").c_str(), 1);
  ::setenv("QV_PKCS11_PIN", "0000", 1);
  auto [code2, out2] = start_alone();
  EXPECT_EQ(code2, 1) << out2;
  EXPECT_NE(out2.find("wrong PIN"), std::string::npos) << out2;
}

// A `cluster up` that fails (one node refuses its config) stops the nodes
// it started with it: no daemon outlives the error (nor the test).
TEST_F(ClusterTest, AFailedClusterUpLeavesNoNodeRunning) {
  ASSERT_EQ(Qv("cluster down --dir cl").code, 0);
  std::ofstream(dir() / "cl/nodes/node-03/node.toml", std::ios::app) << "no_such_key = 1\n";
  Outcome up = Qv("cluster up --dir cl");
  EXPECT_EQ(up.code, 1);
  EXPECT_NE(up.err.find("node-03 refused to start"), std::string::npos) << up.err;
  // Long enough for any node left running to have written its pid file.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int i = 0; i < 6; ++i) {
    const int pid = std::atoi(Slurp(dir() / "cl/nodes" / NodeId(i) / "node.pid").c_str());
    bool gone = pid <= 0;
    for (int w = 0; w < 250 && !gone; ++w) {
      const std::string st = Slurp("/proc/" + std::to_string(pid) + "/stat");
      const size_t close = st.rfind(')');
      gone = st.empty() || (close != std::string::npos && st[close + 2] == 'Z');
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(gone) << NodeId(i) << " still runs as pid " << pid;
  }
}

}  // namespace
}  // namespace qv
