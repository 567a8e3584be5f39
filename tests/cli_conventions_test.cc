// The conventions people who know restic, borg and Vault expect (issue 17),
// on the real qv binary: where the cluster file and key come from, what a
// typo gets, errors as JSON, and smaller things a first user hit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/temp_dir.h"
#include "tests/qv_process.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using ::qv::testing::Outcome;
using ::qv::testing::RunQv;
using ::qv::testing::Slurp;

class CliConventionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("QV_BIN");
    ASSERT_NE(bin, nullptr) << "QV_BIN must name the qv binary (set by ctest)";
    qv_ = bin;
    // Nothing from the machine running the tests decides what qv finds.
    ::setenv("XDG_CONFIG_HOME", (dir_ / "xdg").c_str(), 1);
    ::unsetenv("QV_CLUSTER");
    ::unsetenv("QV_KEY");
  }
  void TearDown() override {
    ::unsetenv("XDG_CONFIG_HOME");
    ::unsetenv("QV_CLUSTER");
    ::unsetenv("QV_KEY");
  }
  Outcome Qv(const std::string& args, const fs::path& in = {}) {
    return RunQv(qv_, in.empty() ? dir_ : in, args);
  }
  // The first line of `qv status` names the cluster file and its source;
  // the nodes are down, which does not matter here.
  std::string StatusSource(const std::string& args = "", const fs::path& in = {}) {
    Outcome o = Qv("status " + args, in);
    return o.out.substr(0, o.out.find('\n'));
  }

  std::string qv_;
  ScopedTempDir tmp_{"qv-cli-conv-test"};
  const fs::path dir_ = tmp_.path();
};

// --cluster > QV_CLUSTER > ./cluster.toml > $XDG_CONFIG_HOME/quorumvault,
// a folder stands for its cluster.toml, and status says which it used.
TEST_F(CliConventionsTest, TheClusterFileIsFoundInTheDocumentedOrder) {
  Outcome none = Qv("status");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no cluster file: give --cluster FILE"), std::string::npos) << none.err;
  for (const char* c : {"a", "b", "xdg/quorumvault"}) {
    fs::create_directories(dir_ / c);
    ASSERT_EQ(Qv(std::string("cluster init --dir ") + c + " --base-port 19700").code, 0);
  }
  const std::string xdg = (dir_ / "xdg/quorumvault/cluster.toml").string();
  EXPECT_EQ(StatusSource(), "cluster file: " + xdg + " (from " + xdg + ")");
  EXPECT_EQ(StatusSource("", dir_ / "a"), "cluster file: cluster.toml (from ./cluster.toml)");
  ::setenv("QV_CLUSTER", "b", 1);
  EXPECT_EQ(StatusSource(), "cluster file: b/cluster.toml (from QV_CLUSTER)");
  ::setenv("QV_CLUSTER", (dir_ / "b").c_str(), 1);
  EXPECT_EQ(StatusSource("", dir_ / "a"),
            "cluster file: " + (dir_ / "b/cluster.toml").string() + " (from QV_CLUSTER)")
      << "QV_CLUSTER wins over ./cluster.toml";
  EXPECT_EQ(StatusSource("--cluster a"), "cluster file: a/cluster.toml (from --cluster)");
  EXPECT_EQ(StatusSource("--cluster=a/cluster.toml"),
            "cluster file: a/cluster.toml (from --cluster)");
  ::unsetenv("QV_CLUSTER");
  // --local beside a found cluster file is no conflict; beside a typed
  // --cluster it is.
  ASSERT_EQ(Qv("keygen --out signer.key", dir_ / "a").code, 0);
  ASSERT_EQ(Qv("sample --out model --size 64KiB --shards 1", dir_ / "a").code, 0);
  Outcome local = Qv("backup --local vault --key signer.key model", dir_ / "a");
  EXPECT_EQ(local.code, 0) << local.err;
  Outcome both =
      Qv("backup --local vault --cluster cluster.toml --key signer.key model", dir_ / "a");
  EXPECT_EQ(both.code, 1);
  EXPECT_NE(both.err.find("exactly one of --local DIR or --cluster FILE"), std::string::npos)
      << both.err;
  // QV_KEY stands for --key.
  ::setenv("QV_KEY", "a/cluster.toml", 1);
  Outcome key = Qv("status --cluster a");
  EXPECT_NE(key.err.find("a/cluster.toml is not a quorumvault secret key file"), std::string::npos)
      << key.err;
}

TEST_F(CliConventionsTest, TyposGetASuggestionAndUsageErrorsExitTwo) {
  struct Case {
    std::string args, says;
  } cases[] = {
      {"lsit", "unknown command 'lsit'; did you mean 'list'?"},
      {"cluster iniy", "unknown command 'cluster iniy'; did you mean 'cluster init'?"},
      {"restore rn", "unknown command 'restore rn'; did you mean 'restore run'?"},
      {"xyzzy", "unknown command 'xyzzy' (commands: keygen, backup"},
      {"list --bogus", "--bogus"},
  };
  for (const auto& c : cases) {
    Outcome o = Qv(c.args);
    EXPECT_EQ(o.code, 2) << c.args;
    EXPECT_NE(o.err.find(c.says), std::string::npos) << c.args << ": " << o.err;
    EXPECT_EQ(o.err.find("A subcommand is required"), std::string::npos) << o.err;
  }
  // Words a command takes are not typos of its subcommands.
  EXPECT_EQ(Qv("approve --help").code, 0);
}

// Under --json an error is also a JSON object on stdout with a stable code.
TEST_F(CliConventionsTest, ErrorsUnderJsonAreJsonObjectsOnStdout) {
  struct Case {
    std::string args, code;
    int exit;
  } cases[] = {
      {"status --cluster nope --json", "not_found", 1},
      {"list --json --local nowhere", "not_found", 1},
      {"lsit --json", "usage", 2},
      {"list --json --bogus", "usage", 2},
  };
  for (const auto& c : cases) {
    Outcome o = Qv(c.args);
    EXPECT_EQ(o.code, c.exit) << c.args;
    EXPECT_NE(o.err.find("qv: error:"), std::string::npos) << c.args;
    auto j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << c.args << ": " << o.out;
    EXPECT_EQ(j["error"]["code"], c.code) << o.out;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
}

// A second cluster on ports in use is told so, and starts nothing.
TEST_F(CliConventionsTest, ClusterUpOnAPortInUseSaysSoAndStartsNothing) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  // The held port is node-02's.
  ASSERT_EQ(Qv("cluster init --dir cl --base-port " + std::to_string(port - 2)).code, 0);
  Outcome up = Qv("cluster up --dir cl");
  ::close(fd);
  EXPECT_EQ(up.code, 1);
  EXPECT_NE(up.err.find("node-02's address 127.0.0.1:" + std::to_string(port) + " is in use"),
            std::string::npos)
      << up.err;
  for (int i = 0; i < 6; ++i) {
    EXPECT_FALSE(fs::exists(dir_ / "cl/nodes" / ("node-0" + std::to_string(i)) / "node.pid"));
  }
}

// Restored nested folders have the top folder's mode (0700).
TEST_F(CliConventionsTest, RestoredFoldersAreAllPrivate) {
  fs::create_directories(dir_ / "model/a/b");
  std::ofstream(dir_ / "model/top.json") << "{}";
  std::ofstream(dir_ / "model/a/b/weights.bin") << std::string(70000, 'w');
  ASSERT_EQ(Qv("keygen --out signer.key").code, 0);
  Outcome b = Qv("backup --local vault --key signer.key model");
  ASSERT_EQ(b.code, 0) << b.err;
  const std::string id = b.out.substr(0, b.out.find('\n'));
  ASSERT_EQ(Qv("restore --local vault --backup " + id + " --dest out").code, 0);
  for (const char* d : {"out", "out/a", "out/a/b"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / d).c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << d;
  }
  EXPECT_EQ(Slurp(dir_ / "out/a/b/weights.bin"), std::string(70000, 'w'));
}

}  // namespace
}  // namespace qv
