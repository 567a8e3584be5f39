// A real six-node cluster: node processes started by `qv cluster up`, real
// sockets on 127.0.0.1, real SQLite files; attacks made from raw sockets and
// from clients with the wrong keys.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/cluster_config.h"
#include "node/node_client.h"
#include "tests/qv_process.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using ::qv::testing::Outcome;
using ::qv::testing::RunQv;
using ::qv::testing::Slurp;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("QV_BIN");
    ASSERT_NE(bin, nullptr);
    qv_ = bin;
    // A port range per test process, so parallel ctest runs do not collide,
    // kept below the kernel's ephemeral range (32768+) so no client socket's
    // source port can hold a node's port.
    base_port_ = 10000 + (::getpid() % 2500) * 8;
    Outcome init = Qv("cluster init --dir cl --base-port " + std::to_string(base_port_));
    ASSERT_EQ(init.code, 0) << init.err;
    for (int i = 0; i < 6; ++i) {
      fs::path nf = dir() / "cl/nodes" / NodeId(i) / "node.toml";
      std::ofstream(nf, std::ios::app) << "handshake_timeout_ms = 1500\n";
    }
    Outcome up = Qv("cluster up --dir cl");
    ASSERT_EQ(up.code, 0) << up.err << up.out << Slurp(dir() / "cl/nodes/node-00/node.log");
    cluster_ = *ClusterConfig::Load(dir() / "cl/cluster.toml");
  }
  void TearDown() override { Qv("cluster down --dir cl"); }

  const fs::path& dir() const { return tmp_.path(); }
  static std::string NodeId(int i) { return "node-0" + std::to_string(i); }

  Outcome Qv(const std::string& args) { return RunQv(qv_, dir(), args); }

  std::string Backup(const std::string& what) {
    Outcome b = Qv("backup --cluster cl/cluster.toml --key cl/coordinator.key " + what);
    EXPECT_EQ(b.code, 0) << b.err;
    return b.out.substr(0, b.out.find('\n'));
  }

  void Kill9(int i) {
    int pid = std::atoi(Slurp(dir() / "cl/nodes" / NodeId(i) / "node.pid").c_str());
    ASSERT_GT(pid, 0);
    ::kill(pid, SIGKILL);
    // Dead once gone or a zombie (its new parent may never reap it).
    for (int w = 0; w < 200; ++w) {
      std::string st = Slurp("/proc/" + std::to_string(pid) + "/stat");
      size_t close = st.rfind(')');
      if (st.empty() || (close != std::string::npos && st[close + 2] == 'Z')) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void ExpectSameTree(const fs::path& a, const fs::path& b) {
    size_t n = 0;
    for (auto& e : fs::recursive_directory_iterator(a)) {
      if (!e.is_regular_file()) continue;
      fs::path rel = fs::relative(e.path(), a);
      ASSERT_TRUE(fs::exists(b / rel)) << rel;
      EXPECT_EQ(Slurp(e.path()), Slurp(b / rel)) << rel;
      ++n;
    }
    EXPECT_GT(n, 0u);
  }

  int RawConnect(int i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(base_port_ + i));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }

  // True if the server closes the connection (recv returns 0 or an error).
  static bool ClosedByServer(int fd) {
    char b[256];
    while (true) {
      ssize_t n = ::recv(fd, b, sizeof b, 0);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }

  bool Healthy(int i) {
    auto key = SigningKey::Load(dir() / "cl/coordinator.key");
    auto c = NodeClient::Connect(cluster_.nodes[i], **key);
    if (!c.ok()) return false;
    Request r;
    r.op = Op::kHealth;
    auto resp = (*c)->Call(r);
    return resp.ok() && resp->ToStatus().ok();
  }

  ScopedTempDir tmp_{"qv-cluster-test"};
  std::string qv_;
  int base_port_ = 0;
  ClusterConfig cluster_;
};

TEST_F(ClusterTest, BackupAndRestoreAMultiFileModel) {
  ASSERT_EQ(Qv("sample --out model --size 6MiB --shards 3").code, 0);
  std::string id = Backup("model");
  ASSERT_EQ(id.size(), 32u);
  Outcome r = Qv("restore --cluster cl/cluster.toml --backup " + id + " --dest restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  Outcome list = Qv("list --cluster cl/cluster.toml --json");
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find(id), std::string::npos);
  Outcome status = Qv("status --cluster cl/cluster.toml");
  EXPECT_EQ(status.code, 0) << status.err;
}

TEST_F(ClusterTest, RestoreWithAWholeSiteKilled) {
  ASSERT_EQ(Qv("sample --out model --size 4MiB --shards 2").code, 0);
  std::string id = Backup("model");
  Kill9(0);
  Kill9(1);  // site-a is gone
  Outcome status = Qv("status --cluster cl/cluster.toml");
  EXPECT_EQ(status.code, 1);
  EXPECT_NE(status.err.find("2 of 6 nodes unreachable"), std::string::npos) << status.err;
  Outcome r = Qv("restore --cluster cl/cluster.toml --backup " + id + " --dest restored --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["reconstructed"].get<bool>());
  ExpectSameTree(dir() / "model", dir() / "restored");
}

TEST_F(ClusterTest, RestoreWithTwoFragmentsCorruptedOnDisk) {
  ASSERT_EQ(Qv("sample --out model --size 4MiB --shards 2").code, 0);
  std::string id = Backup("model");
  for (int i : {1, 3}) {
    fs::path f = dir() / "cl/nodes" / NodeId(i) / "data/backups" / id / "fragment";
    std::fstream s(f, std::ios::in | std::ios::out | std::ios::binary);
    s.seekp(1000);
    s.put('X');
  }
  Outcome r = Qv("restore --cluster cl/cluster.toml --backup " + id + " --dest restored --json");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  // Restore reads the fastest k nodes, so it may never touch the damaged
  // ones; whenever it does, it names exactly them and no one else.
  for (const auto& p : nlohmann::json::parse(r.out)["problems"]) {
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

TEST_F(ClusterTest, AnImpostorKeyGetsNothingAndAWrongNodeKeyIsNotTrusted) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  std::string id = Backup("model");
  auto impostor = SigningKey::Generate();
  auto c = NodeClient::Connect(cluster_.nodes[0], **impostor);
  if (c.ok()) {
    Request r;
    r.op = Op::kFetchShare;
    r.backup_id = *BackupIdFromText(id);
    auto resp = (*c)->Call(r);
    EXPECT_FALSE(resp.ok()) << "an unknown key got an answer";
  }
  // The refusal is logged by the node.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(Slurp(dir() / "cl/nodes/node-00/node.log").find("event=refused"), std::string::npos);
  // A custodian key is pinned in the cluster file but is not a node peer:
  // it gets nothing from a node either.
  auto custodian = SigningKey::Load(dir() / "cl/custodians/c1.key");
  auto cc = NodeClient::Connect(cluster_.nodes[0], **custodian);
  if (cc.ok()) {
    Request r;
    r.op = Op::kHealth;
    EXPECT_FALSE((*cc)->Call(r).ok());
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
