// The conventions people who know restic, borg and Vault expect (issue 17),
// on the real qv binary: where the cluster file and key come from, what a
// typo gets, errors as JSON, and smaller things a first user hit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
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
  EXPECT_EQ(both.code, 2);
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
      {"", "'qv' needs a command: keygen, backup"},
      {"cluster", "'qv cluster' needs a command: init, add-node, enroll, up, down"},
      {"cluster enroll", "'qv cluster enroll' needs a command: request, run"},
  };
  for (const auto& c : cases) {
    Outcome o = Qv(c.args);
    EXPECT_EQ(o.code, 2) << c.args;
    EXPECT_NE(o.err.find(c.says), std::string::npos) << c.args << ": " << o.err;
    EXPECT_EQ(o.err.find("A subcommand is required"), std::string::npos) << o.err;
  }
  // Words a command takes are not typos of its subcommands; --help helps.
  EXPECT_EQ(Qv("approve --help").code, 0);
  EXPECT_EQ(Qv("cluster --help").code, 0);
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
  // Below the kernel's ephemeral range (32768+), apart from the cluster
  // tests' ports (10000..30000), so no other test's socket holds one.
  const int base = 30000 + (::getpid() % 340) * 8;
  const int port = base + 2;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  // The held port is node-02's.
  ASSERT_EQ(Qv("cluster init --dir cl --base-port " + std::to_string(base)).code, 0);
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

// Names and tags: given, or the model's own (a Hugging Face cache path,
// config.json); list sorts, filters and shows them; latest, latest:NAME and
// id prefixes name backups wherever one is asked for.
TEST_F(CliConventionsTest, BackupsHaveNamesAndTagsAndAreNamedByPrefixOrLatest) {
  ASSERT_EQ(Qv("keygen --out s.key").code, 0);
  const fs::path snap = dir_ / "hub/models--meta-llama--Llama-3-8B/snapshots/0123abcd";
  fs::create_directories(snap);
  std::ofstream(snap / "config.json") << "{\"hidden_size\": 8}";
  std::ofstream(snap / "w.bin") << std::string(5000, 'a');
  fs::create_directories(dir_ / "ft");
  std::ofstream(dir_ / "ft/config.json") << "{\"_name_or_path\": \"acme/tiny-llm\"}";
  std::ofstream(dir_ / "ft/w.bin") << std::string(5000, 'b');
  fs::create_directories(dir_ / "local");
  std::ofstream(dir_ / "local/config.json") << "{\"_name_or_path\": \"/home/me/ckpt\"}";
  std::ofstream(dir_ / "local/w.bin") << "c";
  auto backup = [&](const std::string& args) {
    Outcome b = Qv("backup --local v --key s.key " + args);
    EXPECT_EQ(b.code, 0) << args << ": " << b.err;
    return b.out.substr(0, b.out.find('\n'));
  };
  const std::string hf = backup("--tag prod --tag step-100 " + snap.string());
  const std::string ft = backup("--parent " + hf + " ft");
  // --parent takes any name for a backup: latest is ft here.
  const std::string own = backup("--name llama-3-8b --tag step-200 --parent latest local");
  const std::string plain = backup("--parent " + own + " local");
  Outcome list = Qv("list --local v");
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("ID ", 0), 0u) << list.out;  // a header row
  const size_t a = list.out.find(hf), b = list.out.find(ft), c = list.out.find(own);
  ASSERT_NE(a, std::string::npos);
  EXPECT_NE(list.out.find("meta-llama/Llama-3-8B", a), std::string::npos);
  EXPECT_NE(list.out.find("prod,step-100", a), std::string::npos);
  EXPECT_NE(list.out.find("acme/tiny-llm", b), std::string::npos);
  EXPECT_NE(list.out.find("llama-3-8b", c), std::string::npos);
  EXPECT_NE(list.out.find(plain.substr(0, 8)), std::string::npos);
  auto json = nlohmann::json::parse(Qv("list --local v --json").out);
  ASSERT_EQ(json.size(), 4u);
  std::map<std::string, std::string> names;
  for (const auto& e : json) names[e["backup_id"]] = e["name"];
  EXPECT_EQ(names[plain], "local") << "a local path in config.json names nothing";
  for (const auto& e : json) {
    EXPECT_EQ(e["created"].get<std::string>().back(), 'Z');
    if (e["backup_id"] == hf) {
      EXPECT_EQ(e["tags"], nlohmann::json::array({"prod", "step-100"}));
    }
  }
  // Filters.
  EXPECT_EQ(nlohmann::json::parse(Qv("list --local v --tag prod --json").out).size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(Qv("list --local v --name local --json").out).size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(Qv("list --local v --since 1h --json").out).size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(Qv("list --local v --since 2199-01-01 --json").out).size(), 0u);
  EXPECT_EQ(Qv("list --local v --since yesterday").code, 1);
  // latest (the child of a same-second parent is the later), latest:NAME,
  // and prefixes.
  auto shown = [&](const std::string& name) {
    Outcome o = Qv("show --local v --json --backup " + name);
    EXPECT_EQ(o.code, 0) << name << ": " << o.err;
    return o.code == 0 ? nlohmann::json::parse(o.out)["backup_id"].get<std::string>() : "";
  };
  EXPECT_EQ(shown("latest"), plain);
  EXPECT_EQ(shown("latest:llama-3-8b"), own);
  EXPECT_EQ(shown("latest:meta-llama/Llama-3-8B"), hf);
  EXPECT_EQ(shown(hf.substr(0, 10)), hf);
  Outcome none = Qv("show --local v --backup latest:nope");
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no backup is named nope"), std::string::npos) << none.err;
  EXPECT_NE(Qv("show --local v --backup abc").err.find("4 or more"), std::string::npos);
  // show says when, what it derives from, its tags and its policy.
  Outcome show = Qv("show --local v --backup " + own.substr(0, 8));
  EXPECT_NE(show.out.find("parent    " + ft), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("tags      step-200"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("created   20"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("policy    none"), std::string::npos) << show.out;
  // Bad names and tags are refused before anything is written.
  for (const char* bad : {"--name 'a b'", "--tag 'x y'", "--tag p --tag p", "--name ''"}) {
    Outcome o = Qv(std::string("backup --local v --key s.key ") + bad + " local");
    EXPECT_EQ(o.code, 1) << bad << o.out;
  }
  EXPECT_EQ(nlohmann::json::parse(Qv("list --local v --json").out).size(), 4u);
  // A restore keeps each file's modification time.
  fs::last_write_time(dir_ / "ft/w.bin",
                      fs::last_write_time(dir_ / "ft/w.bin") - std::chrono::hours(24 * 400));
  const std::string dated = backup("ft");
  ASSERT_EQ(Qv("restore --local v --backup " + dated.substr(0, 6) + " --dest out").code, 0);
  struct stat restored {
  }, source{};
  ASSERT_EQ(::stat((dir_ / "out/w.bin").c_str(), &restored), 0);
  ASSERT_EQ(::stat((dir_ / "ft/w.bin").c_str(), &source), 0);
  EXPECT_EQ(restored.st_mtim.tv_sec, source.st_mtim.tv_sec);  // to the second
}

// diff and verify read only signed digests: no quorum, no fragments.
TEST_F(CliConventionsTest, DiffAndVerifyNameEachFileByItsSignedDigest) {
  ASSERT_EQ(Qv("keygen --out s.key").code, 0);
  fs::create_directories(dir_ / "m/sub");
  std::ofstream(dir_ / "m/config.json") << "{}";
  std::ofstream(dir_ / "m/sub/w.bin") << std::string(3000, 'w');
  std::ofstream(dir_ / "m/old.txt") << "old";
  Outcome b1 = Qv("backup --local v --key s.key m");
  ASSERT_EQ(b1.code, 0);
  const std::string one = b1.out.substr(0, 32);
  std::ofstream(dir_ / "m/config.json", std::ios::trunc) << "{\"changed\": true}";
  fs::remove(dir_ / "m/old.txt");
  std::ofstream(dir_ / "m/new.txt") << "new";
  Outcome b2 = Qv("backup --local v --key s.key --parent " + one + " m");
  ASSERT_EQ(b2.code, 0);
  const std::string two = b2.out.substr(0, 32);
  Outcome diff = Qv("diff --local v " + one.substr(0, 8) + " " + two.substr(0, 8));
  ASSERT_EQ(diff.code, 0) << diff.err;
  EXPECT_NE(diff.out.find("M config.json"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("- old.txt"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("+ new.txt"), std::string::npos) << diff.out;
  EXPECT_EQ(diff.out.find("sub/w.bin"), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("1 added, 1 removed, 1 changed"), std::string::npos) << diff.out;
  auto dj = nlohmann::json::parse(Qv("diff --local v --json " + one + " " + two).out);
  EXPECT_EQ(dj["changed"], nlohmann::json::array({"config.json"}));
  // verify: the folder as backed up matches; each kind of drift is named.
  Outcome ok = Qv("verify --local v --backup " + two.substr(0, 6) + " m");
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("verified: 3 file(s) match"), std::string::npos) << ok.out;
  std::ofstream(dir_ / "m/sub/w.bin", std::ios::trunc) << std::string(3000, 'x');  // same size
  fs::remove(dir_ / "m/new.txt");
  std::ofstream(dir_ / "m/stray.bin") << "?";
  Outcome bad = Qv("verify --local v --backup " + two + " m");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("differs  sub/w.bin"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("missing  new.txt"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("extra    stray.bin"), std::string::npos) << bad.out;
  auto vj = nlohmann::json::parse(Qv("verify --local v --json --backup " + two + " m").out);
  EXPECT_EQ(vj["ok"], false);
  EXPECT_EQ(vj["differs"], nlohmann::json::array({"sub/w.bin"}));
}

// --help defines the words it uses and shows the defaults a command would
// really use: the found cluster file's k, m and t.
TEST_F(CliConventionsTest, HelpDefinesItsWordsAndShowsTheClustersDefaults) {
  Outcome top = Qv("--help");
  EXPECT_EQ(top.code, 0);
  for (const char* word : {"custodian ", "requester ", "quorum ", "k, m, t "}) {
    EXPECT_NE(top.out.find(std::string("  ") + word), std::string::npos) << word << top.out;
  }
  for (const char* cmd : {"approve --help", "restore request --help", "backup --help"}) {
    EXPECT_NE(Qv(cmd).out.find("Words used here:"), std::string::npos) << cmd;
  }
  ASSERT_EQ(Qv("cluster init --dir cl --base-port 19800").code, 0);
  std::string toml = Slurp(dir_ / "cl/cluster.toml");
  for (auto [from, to] : {std::pair{"\nk = 4\n", "\nk = 3\n"}, std::pair{"\nm = 2\n", "\nm = 3\n"},
                          std::pair{"\nt = 3\n", "\nt = 2\n"}}) {
    ASSERT_NE(toml.find(from), std::string::npos) << from;
    toml.replace(toml.find(from), std::string(from).size(), to);
  }
  std::ofstream(dir_ / "cl/cluster.toml", std::ios::trunc) << toml;
  Outcome help = Qv("backup --help --cluster cl");
  for (const char* shown : {"--k UINT=3 (the cluster file's)", "--m UINT=3 (the cluster file's)",
                            "--t UINT=2 (the cluster file's)"}) {
    EXPECT_NE(help.out.find(shown), std::string::npos) << shown << help.out;
  }
  EXPECT_NE(Qv("backup --help").out.find("--k UINT=4 "), std::string::npos);
}

// Completion scripts and the man page come from the option tree that
// parses; bash completes through them, zsh loads them, groff reads the page
// without a warning, and the build wrote the same files beside qv.
TEST_F(CliConventionsTest, CompletionAndTheManPageComeFromTheParsersOwnTree) {
  auto save = [&](const std::string& args, const std::string& file) {
    Outcome o = Qv(args);
    ASSERT_EQ(o.code, 0) << args;
    std::ofstream(dir_ / file) << o.out;
  };
  save("completion bash", "qv.bash");
  std::ofstream(dir_ / "complete.sh")
      << "source ./qv.bash\n"
         "for line in 'qv res' 'qv restore r' 'qv backup --ta' 'qv --json cluster enroll ' "
         "'qv approve --ar'; do\n"
         "  read -ra COMP_WORDS <<< \"$line\"; [[ $line == *' ' ]] && COMP_WORDS+=('')\n"
         "  COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _qv; echo \"$line => ${COMPREPLY[*]}\"\n"
         "done\n";
  Outcome bash = RunQv("bash", dir_, "complete.sh");  // runs `bash complete.sh`
  EXPECT_EQ(bash.code, 0) << bash.err;
  for (const char* want :
       {"qv res => restore", "qv restore r => request run", "qv backup --ta => --tag",
        "qv --json cluster enroll  => request run", "qv approve --ar => --armor"}) {
    EXPECT_NE(bash.out.find(want), std::string::npos) << want << "\n" << bash.out;
  }
  save("completion zsh", "_qv");
  Outcome zsh = RunQv("zsh", dir_,
                      "-fc 'autoload -U +X compinit && compinit -u -d ./zcompdump; "
                      "source ./_qv && whence -w _qv'");
  EXPECT_EQ(zsh.code, 0) << zsh.err << " (scripts/install-deps.sh installs zsh)";
  EXPECT_NE(zsh.out.find("_qv: function"), std::string::npos) << zsh.out;
  save("man", "qv.1");
  Outcome lint = RunQv("groff", dir_, "-man -Tutf8 -ww -z qv.1");
  EXPECT_EQ(lint.code, 0) << "(scripts/install-deps.sh installs groff-base)";
  EXPECT_EQ(lint.err, "") << "groff warns about the generated page";
  const std::string page = Slurp(dir_ / "qv.1");
  for (const char* cmd : {"backup", "restore request", "approve", "list", "diff", "verify",
                          "audit log", "pending", "cluster enroll run", "completion"}) {
    EXPECT_NE(page.find(std::string(".SS \"qv ") + cmd + "\""), std::string::npos) << cmd;
  }
  EXPECT_NE(page.find(".B QV_CLUSTER"), std::string::npos);
  // What the build generated (and installs) is what qv prints.
  const fs::path built = fs::path(qv_).parent_path();
  EXPECT_EQ(Slurp(built / "qv.1"), page);
  EXPECT_EQ(Slurp(built / "qv.bash"), Slurp(dir_ / "qv.bash"));
  EXPECT_EQ(Slurp(built / "_qv"), Slurp(dir_ / "_qv"));
}

}  // namespace
}  // namespace qv
