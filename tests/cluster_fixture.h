// The fixture of the multi-process cluster tests: a real six-node cluster
// (3 sites x 2 nodes, k=4 m=2 t=3, 5 custodians, quorum 3) started by
// `qv cluster init` and `qv cluster up` in a temporary folder, node
// processes on 127.0.0.1, real SQLite files; helpers for the ceremony, for
// forging records as a hostile key holder would, and for killing nodes.
#ifndef QV_TESTS_CLUSTER_FIXTURE_H_
#define QV_TESTS_CLUSTER_FIXTURE_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/cluster_config.h"
#include "node/node_client.h"
#include "quorum/request.h"
#include "tests/qv_process.h"

namespace qv {

namespace fs = std::filesystem;
using ::qv::testing::Outcome;

// The node daemons this test process started. A test that aborts (a
// sanitizer's report, a failed CHECK) skips TearDown; the SIGABRT handler
// kills them so that no cluster outlives its test.
inline std::atomic<pid_t> g_cluster_pids[8];

inline void KillClusterOnAbort(int sig) {
  for (auto& p : g_cluster_pids) {
    const pid_t v = p.load();
    if (v > 0) ::kill(v, SIGKILL);  // async-signal-safe
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}
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
    witness_ms_ = WitnessIntervalMs();
    Outcome init =
        Qv("cluster init --dir cl --base-port " + std::to_string(base_port_) + InitFlags());
    ASSERT_EQ(init.code, 0) << init.err;
    nodes_ = static_cast<int>(ClusterConfig::Load(dir() / "cl/cluster.toml")->nodes.size());
    ASSERT_LE(nodes_, 8);
    for (int i = 0; i < nodes_; ++i) {
      fs::path nf = dir() / "cl/nodes" / NodeId(i) / "node.toml";
      std::string toml = Slurp(nf);
      toml = toml.substr(0, toml.find("clock_skew_seconds"));
      std::ofstream(nf)
          << toml
          << "handshake_timeout_ms = 1500\nmessage_timeout_ms = 5000\ncheckpoint_every = 4\n"
          << "witness_interval_ms = " << witness_ms_ << "\nsettle_interval_ms = 500\n";
    }
    ::signal(SIGABRT, KillClusterOnAbort);
    Outcome up = Qv("cluster up --dir cl");
    ASSERT_EQ(up.code, 0) << up.err << up.out << Slurp(dir() / "cl/nodes/node-00/node.log");
    cluster_ = *ClusterConfig::Load(dir() / "cl/cluster.toml");
  }
  void TearDown() override {
    ::unsetenv("QV_PKCS11_PIN");
    ::unsetenv("SOFTHSM2_CONF");
    Qv("cluster down --dir cl");
    for (auto& p : g_cluster_pids) p.store(0);
  }

  // More `qv cluster init` flags (at most 8 nodes in all).
  virtual std::string InitFlags() const { return ""; }

  // The nodes' witness interval at start. An idle cluster's witness rounds
  // cost CPU (each is a Noise handshake per peer, and each handshake's
  // secure allocations change page tables on every core: at 200 ms a
  // six-node cluster kept a core busy), so by default no round runs within
  // a test; a test about witnessing turns them on with WitnessEvery().
  static constexpr uint32_t kNoWitnessMs = 86400000;
  virtual uint32_t WitnessIntervalMs() const { return kNoWitnessMs; }
  // Restarts the nodes witnessing every `ms`.
  void WitnessEvery(uint32_t ms) {
    Reconfigure({{"witness_interval_ms = " + std::to_string(witness_ms_),
                  "witness_interval_ms = " + std::to_string(ms)}});
    witness_ms_ = ms;
  }
  // Long enough for every node to have run at least one more witness round
  // (two intervals and a margin for a loaded machine).
  void AwaitWitnessRound() const {
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * witness_ms_ + 500));
  }

  // Restarts the nodes with each `from` in their node.toml replaced by `to`.
  void Reconfigure(const std::vector<std::pair<std::string, std::string>>& edits) {
    Qv("cluster down --dir cl");
    for (int i = 0; i < nodes_; ++i) {
      const fs::path nf = dir() / "cl/nodes" / NodeId(i) / "node.toml";
      std::string toml = Slurp(nf);
      for (const auto& [from, to] : edits) {
        const size_t at = toml.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        toml.replace(at, from.size(), to);
      }
      std::ofstream(nf, std::ios::trunc) << toml;
    }
    ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  }

  // Remembers the running nodes' pids for KillClusterOnAbort.
  void NotePids() {
    for (int i = 0; i < nodes_; ++i) {
      g_cluster_pids[i].store(static_cast<pid_t>(
          std::atoi(Slurp(dir() / "cl/nodes" / NodeId(i) / "node.pid").c_str())));
    }
  }

  const fs::path& dir() const { return tmp_.path(); }
  int nodes_ = 6;
  static std::string NodeId(int i) { return "node-0" + std::to_string(i); }

  Outcome Qv(const std::string& args) {
    Outcome o = RunQv(qv_, dir(), args);
    if (args.rfind("cluster up", 0) == 0) NotePids();
    return o;
  }

  std::string Backup(const std::string& what) {
    Outcome b = Qv("backup --cluster cl/cluster.toml --key cl/coordinator.key " + what);
    EXPECT_EQ(b.code, 0) << b.err;
    return b.out.substr(0, b.out.find('\n'));
  }

  // The ceremony through the CLI: a request by the operator, approvals by
  // `custodians`, and the run. Returns the run's outcome.
  Outcome QuorumRestore(const std::string& id, const std::string& dest,
                        std::vector<std::string> custodians = {"c1", "c2", "c3"},
                        const std::string& run_flags = "") {
    const std::string req = "req-" + dest;
    Outcome r = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                   " --purpose test --out " + req);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string approvals;
    for (const auto& c : custodians) {
      const std::string out = req + "." + c;
      EXPECT_EQ(Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/" + c + ".key " +
                   req + " --out " + out)
                    .code,
                0);
      approvals += " --approval " + out;
    }
    return Qv("restore run --cluster cl/cluster.toml --request " + req + approvals + " --dest " +
              dest + " " + run_flags);
  }

  // SoftHSM2 tokens of the test's own (DIR/tokens, SOFTHSM2_CONF =
  // DIR/softhsm2.conf) and an empty token folder (DIR/no-token.conf, to
  // start a process "without the token"); initializes each of `labels` with
  // user PIN 1234 and sets QV_PKCS11_PIN to it. TearDown unsets both.
  void UseSoftHsm(const std::vector<std::string>& labels) {
    fs::create_directories(dir() / "tokens");
    std::ofstream(dir() / "softhsm2.conf")
        << "directories.tokendir = " << (dir() / "tokens").string()
        << "\nobjectstore.backend = file\nlog.level = ERROR\n";
    fs::create_directories(dir() / "no-tokens");
    std::ofstream(dir() / "no-token.conf")
        << "directories.tokendir = " << (dir() / "no-tokens").string() << "\n";
    ::setenv("SOFTHSM2_CONF", (dir() / "softhsm2.conf").c_str(), 1);
    ::setenv("QV_PKCS11_PIN", "1234", 1);
    for (const auto& label : labels) {
      const std::string cmd = "softhsm2-util --init-token --free --label " + label +
                              " --pin 1234 --so-pin 5678 >/dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
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

  // Presents `cert` for `backup` to node i as the operator; the answer.
  Result<Response> Present(int i, const std::string& backup, const Bytes& cert, Bytes proof = {}) {
    auto op = SigningKey::Load(dir() / "cl/operator.key");
    QV_ASSIGN_OR_RETURN(auto c, NodeClient::Connect(cluster_.nodes[i], **op));
    Request rel;
    rel.op = Op::kRelease;
    rel.backup_id = *BackupIdFromText(backup);
    rel.payload = cert;
    rel.payload2 = std::move(proof);
    return c->Call(rel);
  }

  // The certificate made of request file `req` and approval files.
  Certificate CertificateFrom(const std::string& req, const std::vector<std::string>& approvals) {
    auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / req, 1 << 16));
    EXPECT_TRUE(sr.ok()) << sr.status().ToString();
    Certificate cert{*sr, {}};
    for (const auto& a : approvals) {
      auto ap = Approval::Parse(*ReadFileBytes(dir() / a, 1 << 16));
      EXPECT_TRUE(ap.ok()) << ap.status().ToString();
      cert.approvals.push_back(*ap);
    }
    return cert;
  }

  // Restarts the nodes with `lines` added to every node.toml (and `env`,
  // e.g. "QV_CRASH_AT=node-02:after-prepare", in their environment).
  void RestartNodesWith(const std::string& lines, const std::string& env = "") {
    Qv("cluster down --dir cl");
    for (int i = 0; i < 6; ++i) {
      std::ofstream(dir() / "cl/nodes" / NodeId(i) / "node.toml", std::ios::app) << lines;
    }
    const std::string cmd = "cd '" + dir().string() + "' && " + env + " '" + qv_ +
                            "' cluster up --dir cl >up.out 2>&1 </dev/null";
    const int rc = std::system(cmd.c_str());
    NotePids();
    ASSERT_EQ(rc, 0) << Slurp(dir() / "up.out");
  }

  // An approval signed with the library, as a hostile or careless key holder
  // can without qv approve's checks: key file, claimed id, request file, out.
  void ForgeApproval(const std::string& key, const std::string& as, const std::string& req,
                     const std::string& out, bool approve = true) {
    auto k = SigningKey::Load(dir() / key);
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / req, 1 << 16));
    ASSERT_TRUE(sr.ok()) << sr.status().ToString();
    auto a = Approval::Sign(*sr, **k, as, approve, "", std::time(nullptr));
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(WriteFileAtomic(dir() / out, a->Encode(), 0644).ok());
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
  uint32_t witness_ms_ = 0;  // the nodes' witness_interval_ms now
  ClusterConfig cluster_;
};

}  // namespace qv

#endif  // QV_TESTS_CLUSTER_FIXTURE_H_
