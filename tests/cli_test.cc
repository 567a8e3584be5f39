// Drives the real qv binary as a separate process: what a user types, what
// they see, and what is left on disk.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/corrupt.h"
#include "base/file_util.h"
#include "base/temp_dir.h"
#include "tests/qv_process.h"

namespace qv {
namespace {

namespace fs = std::filesystem;
using ::qv::testing::ExpectSameTree;
using ::qv::testing::Outcome;
using ::qv::testing::RunQv;
using ::qv::testing::Slurp;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("QV_BIN");
    ASSERT_NE(bin, nullptr) << "QV_BIN must name the qv binary (set by ctest)";
    qv_ = bin;
  }

  Outcome Qv(const std::string& args) { return RunQv(qv_, dir_, args); }

  // keygen + sample + backup; returns the backup id.
  std::string Setup(const std::string& backup_flags = "") {
    EXPECT_EQ(Qv("keygen --out signer.key").code, 0);
    EXPECT_EQ(Qv("sample --out model --size 3MiB --shards 3").code, 0);
    Outcome b = Qv("backup --local vault --key signer.key --unit 64KiB " + backup_flags + " model");
    EXPECT_EQ(b.code, 0) << b.err;
    std::string id = b.out.substr(0, b.out.find('\n'));
    EXPECT_EQ(id.size(), 32u) << b.out;
    return id;
  }

  std::string qv_;
  ScopedTempDir tmp_{"qv-cli-test"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(CliTest, KeygenWritesAPrivateKeyAndPrintsThePublicKey) {
  Outcome r = Qv("keygen --out id.key");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("ed25519:", 0), 0u);
  EXPECT_EQ(r.out.size(), 8 + 64 + 1u);
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "id.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Outcome again = Qv("keygen --out id.key");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);
}

TEST_F(CliTest, BackupAndRestoreASampleModelByteForByte) {
  std::string id = Setup();
  Outcome r = Qv("restore --local vault --backup " + id + " --dest restored");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("verified"), std::string::npos);
  ExpectSameTree(dir_ / "model", dir_ / "restored");
  ExpectSameTree(dir_ / "restored", dir_ / "model");
  Outcome list = Qv("list --local vault");
  EXPECT_EQ(list.code, 0);
  EXPECT_NE(list.out.find(id), std::string::npos);
  Outcome show = Qv("show --local vault --backup " + id);
  EXPECT_EQ(show.code, 0);
  EXPECT_NE(show.out.find("model-00001-of-00003.safetensors"), std::string::npos);
}

TEST_F(CliTest, RestoreSurvivesLostFragmentsSharesAndACorruptedByte) {
  std::string id = Setup("--cipher aes-256-gcm");
  fs::remove_all(dir_ / "vault/node-01/backups" / id);  // fragment and share gone
  fs::remove(dir_ / "vault/node-04/backups" / id / "share.sealed");
  fs::remove(dir_ / "vault/node-05/backups" / id / "share.sealed");
  ASSERT_TRUE(CorruptByte(dir_ / "vault/node-03/backups" / id / "fragment", 70000));
  Outcome r = Qv("restore --local vault --backup " + id + " --dest restored --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["reconstructed"].get<bool>());
  std::string problems = j["problems"].dump();
  EXPECT_NE(problems.find("node-01"), std::string::npos) << problems;
  EXPECT_NE(problems.find("node-03: fragment 3 unit 1 does not match"), std::string::npos)
      << problems;
  ExpectSameTree(dir_ / "model", dir_ / "restored");
}

TEST_F(CliTest, TooFewFragmentsFailsWithOneLineAndNoOutput) {
  std::string id = Setup();
  for (const char* n : {"node-00", "node-02", "node-04"}) {
    fs::remove(dir_ / "vault" / n / "backups" / id / "fragment");
  }
  Outcome r = Qv("restore --local vault --backup " + id + " --dest restored");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("qv: error: failed precondition: need 4 good fragments, have 3"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "restored"));
  for (auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find("partial"), std::string::npos);
  }
}

TEST_F(CliTest, BadInputsGiveOneLineErrorsNamingTheInput) {
  ASSERT_EQ(Qv("keygen --out signer.key").code, 0);
  ASSERT_EQ(Qv("sample --out model --size 64KiB --shards 1").code, 0);
  struct Case {
    std::string args, needle;
    int code;
  };
  std::vector<Case> cases = {
      {"backup --local v --key signer.key --k 4 --m 2 --t 7 model", "t=7", 1},
      {"backup --local v --key nokey.key model", "nokey.key", 1},
      {"backup --local v --key signer.key --cipher des model", "unknown cipher 'des'", 1},
      {"backup --local v --key signer.key --unit 100 model", "multiple of 64", 1},
      {"backup --local v --key signer.key missing-dir", "missing-dir", 2},
      {"restore --local v --backup xyz --dest out", "--backup", 1},
      {"restore --local nowhere --backup 00000000000000000000000000000000 --dest out", "nowhere",
       1},
      {"backup --local v --key signer.key --frobnicate model", "frobnicate", 2},
      {"sample --out x --size -1MiB", "size '-1MiB' is not a number", 1},
      {"sample --out x --size 20000000000GiB", "is too large", 1},
      {"backup --local v --key signer.key --commit-window -5s model", "--commit-window", 1},
      {"backup --local v --key signer.key --commit-window 8d model", "at most 7d", 1},
      {"keygen --out /dev/null/x.key", "x.key", 1},
  };
  for (const auto& c : cases) {
    Outcome r = Qv(c.args);
    EXPECT_EQ(r.code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\n" << r.err;
    if (c.code == 1) {
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << "\n" << r.err;
    }
  }
  ::chmod((dir_ / "signer.key").c_str(), 0644);
  Outcome r = Qv("backup --local v --key signer.key model");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "v" / "node-00" / "backups"));
}

TEST_F(CliTest, RestoreNeverOverwritesAndChecksThePinnedSigner) {
  std::string id = Setup();
  fs::create_directories(dir_ / "restored");
  Outcome r = Qv("restore --local vault --backup " + id + " --dest restored");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("destination exists"), std::string::npos);
  Outcome other = Qv("keygen --out other.key");
  std::string other_pk = other.out.substr(0, other.out.find('\n'));
  Outcome wrong = Qv("restore --local vault --backup " + id + " --dest r2 --signer " + other_pk);
  EXPECT_EQ(wrong.code, 1);
  EXPECT_FALSE(fs::exists(dir_ / "r2"));
}

TEST_F(CliTest, JsonOutputIsMachineReadable) {
  ASSERT_EQ(Qv("keygen --out signer.key").code, 0);
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 2").code, 0);
  Outcome b = Qv("backup --local vault --key signer.key --k 3 --m 3 --t 2 --json model");
  ASSERT_EQ(b.code, 0) << b.err;
  auto j = nlohmann::json::parse(b.out);
  EXPECT_EQ(j["k"], 3);
  EXPECT_EQ(j["m"], 3);
  EXPECT_EQ(j["t"], 2);
  EXPECT_EQ(j["files"], 6);
  EXPECT_EQ(j["cipher"], "chacha20-poly1305");
  Outcome s = Qv("show --local vault --backup " + j["backup_id"].get<std::string>() + " --json");
  ASSERT_EQ(s.code, 0);
  auto m = nlohmann::json::parse(s.out);
  EXPECT_EQ(m["placement"].size(), 6u);
  EXPECT_EQ(m["files"].size(), 6u);
}

TEST_F(CliTest, ANodeRefusesToStartOnABadConfigOrAnUnpinnedKey) {
  ASSERT_EQ(Qv("cluster init --dir cl --base-port 7300").code, 0);
  // A key that is not the one the cluster file pins for this node.
  fs::copy_file(dir_ / "cl/nodes/node-01/node.key", dir_ / "cl/nodes/node-00/node.key",
                fs::copy_options::overwrite_existing);
  Outcome wrong_key = Qv("node run --config cl/nodes/node-00/node.toml");
  EXPECT_EQ(wrong_key.code, 1);
  EXPECT_NE(wrong_key.err.find("is not the key"), std::string::npos) << wrong_key.err;
  // A config error names file, field and reason, and the node does not start.
  const std::string original = Slurp(dir_ / "cl/cluster.toml");
  std::string cluster = original;
  cluster.replace(cluster.find("port = 7302"), 11, "port = 7301");
  std::ofstream(dir_ / "cl/cluster.toml") << cluster;
  Outcome dup = Qv("node run --config cl/nodes/node-02/node.toml");
  EXPECT_EQ(dup.code, 1);
  EXPECT_NE(dup.err.find("cluster.toml: nodes[2].port: duplicate address 127.0.0.1:7301"),
            std::string::npos)
      << dup.err;
  EXPECT_FALSE(fs::exists(dir_ / "cl/nodes/node-02/node.pid"));
  // A master key that others can read is refused.
  std::ofstream(dir_ / "cl/cluster.toml") << original;
  ::chmod((dir_ / "cl/nodes/node-03/master.key").c_str(), 0644);
  Outcome leaky = Qv("node run --config cl/nodes/node-03/node.toml");
  EXPECT_EQ(leaky.code, 1);
  EXPECT_NE(leaky.err.find("chmod 600"), std::string::npos) << leaky.err;
}

TEST_F(CliTest, BenchPrintsStagesBesideTheComputeLimit) {
  Outcome r = Qv("bench --size 8MiB --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_GE(j["stages"].size(), 6u);
  for (const auto& s : j["stages"]) EXPECT_GT(s["mb_per_s"].get<double>(), 0) << s;
  ASSERT_GE(j["pipelines"].size(), 3u);
  for (const auto& p : j["pipelines"]) {
    EXPECT_GT(p["mb_per_s"].get<double>(), 0) << p;
    EXPECT_GT(p["limit_mb_per_s"].get<double>(), 0) << p;
  }
  const auto& c = j["certificates"];
  EXPECT_EQ(c["quorum"], 3);
  EXPECT_EQ(c["signatures_per_certificate"], 5);  // request, manifest, 3 approvals
  EXPECT_GT(c["verified_per_s"].get<double>(), 0);
  EXPECT_GT(c["ed25519_verifies_per_s"].get<double>(), 0);
}

// qv drill: every shipped drill from any folder, a report an auditor
// reads, JSON that parses, exit 1 on a FAIL and 2 on bad usage.
TEST_F(CliTest, DrillRunReportsEveryDrillAndFailsOnAFailedOne) {
  Outcome all = Qv("drill run --all --report drills.md");
  ASSERT_EQ(all.code, 0) << all.out << all.err;
  EXPECT_NE(all.out.find("drills passed"), std::string::npos) << all.out;
  EXPECT_EQ(all.out.find("FAIL"), std::string::npos) << all.out;
  const std::string md = Slurp(dir_ / "drills.md");
  EXPECT_NE(md.find("# quorumvault drill report"), std::string::npos);
  EXPECT_NE(md.find("| stolen-node |"), std::string::npos) << md.substr(0, 2000);
  Outcome json = Qv("drill run --json --seed 3 " + std::string(QV_SOURCE_DIR) +
                    "/configs/drills/replayed-certificate.toml");
  ASSERT_EQ(json.code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["seed"], 3);
  EXPECT_EQ(j["drills"][0]["result"], "PASS");
  EXPECT_FALSE(j["drills"][0]["steps"].empty());
  std::ofstream(dir_ / "wrong.toml")
      << "[drill]\nname = \"wrong\"\nrand_category = \"x\"\nkind = \"abuse\"\n"
         "[[step]]\ndo = \"backup\"\nlabel = \"a\"\nexpect = \"failed\"\n";
  Outcome failed = Qv("drill run wrong.toml");
  EXPECT_EQ(failed.code, 1) << failed.out;
  EXPECT_NE(failed.out.find("FAIL"), std::string::npos) << failed.out;
  std::ofstream(dir_ / "bad.toml") << "[drill]\nname = 1\n";
  Outcome bad = Qv("drill run bad.toml");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("bad.toml"), std::string::npos) << bad.err;
  EXPECT_EQ(Qv("drill run").code, 2);
  EXPECT_EQ(Qv("drill").code, 2);
  // --work never points the drills at a folder holding someone's files
  // (they delete node disks there).
  fs::create_directories(dir_ / "precious");
  std::ofstream(dir_ / "precious" / "replayed-certificate") << "keep me";
  Outcome work = Qv("drill run --work precious " + std::string(QV_SOURCE_DIR) +
                    "/configs/drills/replayed-certificate.toml");
  EXPECT_EQ(work.code, 1);
  EXPECT_NE(work.err.find("must not exist or be empty"), std::string::npos) << work.err;
  EXPECT_EQ(Slurp(dir_ / "precious" / "replayed-certificate"), "keep me");
  EXPECT_EQ(Qv("drill run --work fresh --keep " + std::string(QV_SOURCE_DIR) +
               "/configs/drills/replayed-certificate.toml")
                .code,
            0);
  EXPECT_TRUE(fs::exists(dir_ / "fresh" / "replayed-certificate" / "cluster" / "cluster.toml"));
}

TEST_F(CliTest, DrillBenchPrintsThroughputBesideTheMachinesLimits) {
  Outcome r = Qv("drill bench --sites 3 --nodes-per-site 2 --backups 4 --restores 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["nodes"], 6);
  EXPECT_EQ(j["restores_identical"], 2);
  EXPECT_GT(j["events_per_s"].get<double>(), 0);
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 0);
  EXPECT_GT(j["machine_fsyncs_per_s"].get<double>(), 0);
  EXPECT_GT(j["machine_ed25519_verifies_per_s"].get<double>(), 0);
  EXPECT_EQ(Qv("drill bench --backups 0").code, 1);
}

TEST_F(CliTest, RepairBenchPrintsScrubRepairAndRecoveryBesideTheMachinesLimits) {
  Outcome r = Qv("repair bench --size 2MiB --recoveries 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["size"], 2 << 20);
  EXPECT_EQ(j["recoveries"], 2);
  EXPECT_GT(j["repair_s"].get<double>(), 0);
  // The repair read k fragments' worth and rebuilt the lost site's two.
  EXPECT_EQ(j["repair_read_bytes"].get<uint64_t>(), j["repair_rebuilt_bytes"].get<uint64_t>() * 2);
  EXPECT_GE(j["scrub_full_bytes"].get<uint64_t>(), uint64_t{2} << 20);
  EXPECT_GT(j["recovery_ms"].get<double>(), 0);
  EXPECT_GT(j["machine_sha256_mb_s"].get<double>(), 0);
  EXPECT_GT(j["machine_rs_reconstruct_mb_s"].get<double>(), 0);
  EXPECT_GT(j["machine_disk_write_mb_s"].get<double>(), 0);
  EXPECT_EQ(Qv("repair bench --recoveries 0").code, 2);
  EXPECT_EQ(Qv("repair bench --size lots").code, 1);
}

// configs/systemd's node unit, as systemd-analyze verify reads it (with
// ExecStart pointing at the built qv). verify exits 0 on unknown keys, so
// any word it prints is a failure too; a misspelt key shows the check bites.
TEST_F(CliTest, TheSystemdUnitVerifiesCleanly) {
  // scripts/install-deps.sh installs systemd: a missing checker is a failure.
  ASSERT_EQ(std::system("command -v systemd-analyze >/dev/null 2>&1"), 0)
      << "systemd-analyze is not installed (scripts/install-deps.sh installs systemd)";
  const std::string unit =
      Slurp(fs::path(QV_SOURCE_DIR) / "configs/systemd/quorumvault-node@.service");
  ASSERT_NE(unit.find("ExecStart=/usr/local/bin/qv node run"), std::string::npos);
  auto verify = [&](const std::string& text, const std::string& instance) {
    const fs::path f = dir_ / ("quorumvault-node@" + instance + ".service");
    std::string t = text;
    t.replace(t.find("/usr/local/bin/qv"), 17, qv_);
    std::ofstream(f) << t;
    const std::string cmd = "systemd-analyze verify --man=no '" + f.string() + "' >'" +
                            (dir_ / "verify.out").string() + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    return Outcome{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, Slurp(dir_ / "verify.out"), ""};
  };
  Outcome good = verify(unit, "node-00");
  EXPECT_EQ(good.code, 0) << good.out;
  EXPECT_EQ(good.out, "");
  for (const char* key : {"NoNewPrivileges=yes", "ProtectSystem=strict", "User=quorumvault",
                          "CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes"}) {
    EXPECT_NE(unit.find(key), std::string::npos) << key;
  }
  std::string typo = unit;
  typo.replace(typo.find("ProtectSystem="), 14, "ProtectSystm=");
  EXPECT_NE(verify(typo, "node-01").out, "");
  const std::string users = Slurp(fs::path(QV_SOURCE_DIR) / "configs/systemd/quorumvault.conf");
  EXPECT_NE(users.find("\nu quorumvault "), std::string::npos);
}

}  // namespace
}  // namespace qv
