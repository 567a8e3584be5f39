// Crashes at exact points on a real loopback cluster: what a killed or
// interrupted process leaves behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <set>

#include "crypto/pkcs11.h"
#include "node/node.h"
#include "tests/cluster_fixture.h"

namespace qv {
namespace {

using ::qv::testing::ExpectSameTree;

class CrashTest : public ClusterTest {
 protected:
  // A request for `id` written to `req`, approved by c1..c3; the flags for
  // `qv restore run`.
  std::string Approved(const std::string& id, const std::string& req) {
    Outcome r = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                   " --purpose drill --out " + req);
    EXPECT_EQ(r.code, 0) << r.err;
    std::string flags = " --request " + req;
    for (const char* c : {"c1", "c2", "c3"}) {
      EXPECT_EQ(Qv(std::string("approve --yes --cluster cl/cluster.toml --key cl/custodians/") + c +
                   ".key " + req + " --out " + req + "." + c)
                    .code,
                0);
      flags += " --approval " + req + "." + c;
    }
    return flags;
  }

  // Runs `qv ARGS` in the background; once every node has logged `marker`
  // `count` times, waits `delay` and sends `sig`. True if the signal ended
  // the process (it had not finished).
  // `shell` runs first in the same shell (e.g. "ulimit -n 300 &&"). A qv
  // that catches the signal ends with 128 + its number; that counts too.
  // With `staging` set, the delay starts only once a folder beginning with
  // it exists in dir() (the restore is writing), so a loaded machine cannot
  // move the signal before the writer starts.
  bool InterruptAfter(const std::string& args, const std::string& marker, size_t count,
                      std::chrono::milliseconds delay, int sig, const std::string& shell = "",
                      const std::string& staging = "") {
    const std::string cmd = "cd '" + dir().string() + "' && " + shell + " exec '" + qv_ + "' " +
                            args + " >interrupted.out 2>&1 </dev/null";
    pid_t pid = ::fork();
    EXPECT_GE(pid, 0);
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
    bool seen = false;
    for (int w = 0; w < 10000 && !seen; ++w) {
      seen = true;
      for (int i = 0; i < 6; ++i) {
        const std::string log = Slurp(dir() / "cl/nodes" / NodeId(i) / "node.log");
        size_t n = 0;
        for (size_t p = log.find(marker); p != std::string::npos; p = log.find(marker, p + 1)) ++n;
        seen &= n >= count;
      }
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(seen) << marker;
    bool writing = staging.empty();
    for (int w = 0; w < 30000 && !writing; ++w) {
      std::error_code ec;
      for (auto& e : fs::directory_iterator(dir(), ec)) {
        writing |= e.path().filename().string().rfind(staging, 0) == 0;
      }
      if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(writing) << staging;
    std::this_thread::sleep_for(delay);
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 128 + sig);
  }

  // Files under the test folder, outside the original model and the
  // cluster's own folders, that begin with any original file's first bytes.
  std::vector<std::string> PlaintextOutside(const fs::path& model,
                                            const std::vector<fs::path>& allowed) {
    std::vector<std::string> heads;
    for (auto& e : fs::recursive_directory_iterator(model)) {
      if (e.is_regular_file() && e.file_size() >= 4096)
        heads.push_back(Slurp(e.path()).substr(0, 4096));
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(dir());
         it != fs::recursive_directory_iterator(); ++it) {
      bool skip = it->path() == model || it->path() == dir() / "cl";
      for (const auto& a : allowed) skip |= it->path() == a;
      if (skip) {
        it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file() || it->file_size() < 4096) continue;
      std::ifstream in(it->path(), std::ios::binary);
      std::string head(4096, '\0');
      in.read(head.data(), 4096);
      for (const auto& h : heads) {
        if (head == h) found.push_back(it->path().string());
      }
    }
    return found;
  }
};

// kill -9 and Ctrl-C (SIGINT) at several points of a restore, after the
// nodes released: no decrypted byte of the weights is left anywhere, and
// the next restore to the same destination cleans up and succeeds.
TEST_F(CrashTest, AnInterruptedRestoreLeavesNoPlaintextBehind) {
  ASSERT_EQ(Qv("sample --out model --size 256MiB --shards 4").code, 0);
  const std::string id = Backup("model");
  struct Point {
    int signal;
    int delay_ms;
  };
  size_t releases = 0;
  int n = 0;
  for (const Point p : {Point{SIGKILL, 0}, Point{SIGINT, 30}, Point{SIGKILL, 120}}) {
    SCOPED_TRACE("signal " + std::to_string(p.signal) + " at +" + std::to_string(p.delay_ms) +
                 " ms");
    const std::string flags = Approved(id, "req" + std::to_string(++n));
    ++releases;
    ASSERT_TRUE(InterruptAfter("restore run --cluster cl/cluster.toml" + flags + " --dest out",
                               "req=release", releases, std::chrono::milliseconds(p.delay_ms),
                               p.signal))
        << "the restore finished before it could be interrupted";
    EXPECT_FALSE(fs::exists(dir() / "out"));
    const auto left = PlaintextOutside(dir() / "model", {});
    EXPECT_TRUE(left.empty()) << left.size() << " files, e.g. " << left[0];
  }
  // The same certificate again (a retry), to the same destination. A
  // killed run leaves its (empty) staging folder, unless it was killed while
  // already removing it; the next run removes what is left and says so
  // (the unit test StaleStagingFromADeadRun... checks that every time).
  bool stale = false;
  for (auto& e : fs::directory_iterator(dir())) {
    stale |= e.path().filename().string().rfind(".out.qv-partial-", 0) == 0;
  }
  Outcome ok =
      Qv("restore run --cluster cl/cluster.toml" + Approved(id, "req-final") + " --dest out");
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.err.find("left by an interrupted restore") != std::string::npos, stale) << ok.err;
  ExpectSameTree(dir() / "model", dir() / "out");
  EXPECT_TRUE(PlaintextOutside(dir() / "model", {dir() / "out"}).empty());
  // Nothing but the restored folder beside it: no staging folder remains.
  for (auto& e : fs::directory_iterator(dir())) {
    EXPECT_EQ(e.path().filename().string().find(".qv-partial-"), std::string::npos) << e.path();
  }
}

// Where files must be written named (here: too few descriptors to keep
// them unnamed, as on a filesystem without O_TMPFILE), Ctrl-C and SIGTERM
// remove the staging folder before the process ends.
TEST_F(CrashTest, AnInterruptedNamedFallbackRestoreRemovesItsStaging) {
  ASSERT_EQ(Qv("sample --out model --size 256MiB --shards 64").code, 0);
  const std::string id = Backup("model");
  size_t releases = 0;
  int n = 0;
  for (int sig : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(sig);
    const std::string flags = Approved(id, "req" + std::to_string(++n));
    ++releases;
    // 300 descriptors: 44 files may stay unnamed, the other 20 are named.
    ASSERT_TRUE(InterruptAfter("restore run --cluster cl/cluster.toml" + flags + " --dest out",
                               "req=release", releases, std::chrono::milliseconds(250), sig,
                               "ulimit -n 300 &&", ".out.qv-partial-"))
        << "the restore finished before it could be interrupted";
    EXPECT_NE(Slurp(dir() / "interrupted.out").find("nothing restored was left behind"),
              std::string::npos)
        << Slurp(dir() / "interrupted.out");
    const auto left = PlaintextOutside(dir() / "model", {});
    EXPECT_TRUE(left.empty()) << left.size() << " files, e.g. " << left[0];
    for (auto& e : fs::directory_iterator(dir())) {
      EXPECT_EQ(e.path().filename().string().find(".qv-partial-"), std::string::npos) << e.path();
    }
  }
}

// meta.db lost on node-02 (operator error, a VM snapshot without it): the
// node destroys nothing. A complete backup is re-indexed from its signed
// manifest and serves a restore that needs node-02; a damaged one is moved
// to quarantine/, and `qv status` reports both; a request it released
// stays spent.
TEST_F(CrashTest, ANodeThatLostItsDatabaseRecoversWhatItCanAndDestroysNothing) {
  ASSERT_EQ(Qv("sample --out model --size 2MiB --shards 2").code, 0);
  const std::string good = Backup("model");
  const std::string bad = Backup("model/config.json");
  const std::string flags = Approved(good, "req");
  ASSERT_EQ(Qv("restore run --cluster cl/cluster.toml" + flags + " --dest first").code, 0);
  Kill9(2);
  const fs::path data = dir() / "cl/nodes/node-02/data";
  for (const char* f : {"meta.db", "meta.db-wal", "meta.db-shm"}) fs::remove(data / f);
  const std::string leaves = Slurp(data / "backups" / bad / "leaves");
  std::ofstream(data / "backups" / bad / "leaves", std::ios::binary | std::ios::trunc)
      << leaves.substr(0, leaves.size() - 1);
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Outcome status = Qv("status --cluster cl/cluster.toml");
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("recovered backup " + good + " (published) from its signed manifest"),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find("quarantined "), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("leaves are incomplete"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("restored 1 spent request id(s) from the audit log"), std::string::npos)
      << status.out;
  // The damaged backup is set aside, not deleted.
  size_t quarantined = 0;
  for (auto& e : fs::directory_iterator(data / "quarantine")) {
    quarantined += e.path().filename().string().rfind(bad, 0) == 0 &&
                   fs::exists(e.path() / "fragment") && fs::exists(e.path() / "share.sealed");
  }
  EXPECT_EQ(quarantined, 1u);
  // With node-00 and node-01 gone, every one of the four other fragments
  // is needed: node-02's recovered one serves.
  Kill9(0);
  Kill9(1);
  Outcome r = Qv("restore run --cluster cl/cluster.toml" + Approved(good, "req2") + " --dest out");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "out");
  // The request node-02 released before its database was lost is still
  // spent there: a replay without the reply key's proof is refused.
  auto resp = Present(2, good, CertificateFrom("req", {"req.c1", "req.c2", "req.c3"}).Encode());
  ASSERT_TRUE(resp.ok());
  EXPECT_NE(resp->message.find("replayed"), std::string::npos) << resp->message;
}

// After a crash, node-03's pid file names a pid that an unrelated process
// now has: `cluster down` must not signal it, and `cluster up` must start
// the node rather than trust it.
TEST_F(CrashTest, AStalePidFileNeverGetsAnUnrelatedProcessKilled) {
  Kill9(3);
  pid_t bystander = ::fork();
  ASSERT_GE(bystander, 0);
  if (bystander == 0) {
    ::execl("/bin/sleep", "sleep", "60", nullptr);
    ::_exit(127);
  }
  std::ofstream(dir() / "cl/nodes/node-03/node.pid", std::ios::trunc) << bystander << "\n";
  Outcome down = Qv("cluster down --dir cl");
  EXPECT_EQ(down.code, 0) << down.err;
  EXPECT_EQ(::waitpid(bystander, nullptr, WNOHANG), 0) << "the bystander was killed";
  EXPECT_EQ(::kill(bystander, 0), 0);
  std::ofstream(dir() / "cl/nodes/node-03/node.pid", std::ios::trunc) << bystander << "\n";
  Outcome up = Qv("cluster up --dir cl");
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_NE(std::atoi(Slurp(dir() / "cl/nodes/node-03/node.pid").c_str()), bystander);
  EXPECT_EQ(Qv("status --cluster cl/cluster.toml").code, 0);
  EXPECT_EQ(::waitpid(bystander, nullptr, WNOHANG), 0);
  ::kill(bystander, SIGKILL);
  ::waitpid(bystander, nullptr, 0);
}

// A node's data (metadata, audit trail, manifests, fragments, sealed
// shares, and the folders holding them) is readable by no other user.
TEST_F(CrashTest, NodeDataIsPrivateToTheNode) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  Backup("model");
  size_t checked = 0;
  for (int i = 0; i < 6; ++i) {
    const fs::path data = dir() / "cl/nodes" / NodeId(i) / "data";
    EXPECT_EQ(fs::status(data).permissions() & fs::perms::all, fs::perms::owner_all) << data;
    for (auto& e : fs::recursive_directory_iterator(data)) {
      const auto p = e.symlink_status().permissions();
      EXPECT_EQ(p & (fs::perms::group_all | fs::perms::others_all), fs::perms::none) << e.path();
      ++checked;
    }
  }
  EXPECT_GT(checked, 6u * 8);  // databases, WAL files, folders and the backup's files
}

// The crash-point harness for backup's two-phase commit: the coordinator,
// and separately a node, killed (SIGKILL) at each step: after a node's
// prepare, between prepare and publish, after a node's publish. Once every
// node is back, each backup is committed on every node (listed, restorable
// byte for byte) or gone from every node (no byte of it left, the abort
// audited): never listed without being committed.
TEST_F(CrashTest, BackupsAreAllOrNothingAtEveryCrashPoint) {
  RestartNodesWith("clock_skew_seconds = 1\n");
  ASSERT_EQ(Qv("sample --out model --size 512KiB --shards 2").code, 0);
  struct Point {
    std::string at;
    bool committed;  // the outcome the protocol must reach
  };
  const std::vector<Point> points = {
      {"coordinator:prepared-1", false},     {"coordinator:prepared-5", false},
      {"coordinator:before-publish", false}, {"coordinator:published-1", true},
      {"coordinator:published-5", true},     {"node-02:after-prepare", false},
      {"node-02:after-publish", true},       {"node-05:after-prepare", false},
      {"node-05:after-publish", true}};
  auto folders = [&](const std::string& id) {
    size_t n = 0;
    for (int i = 0; i < 6; ++i) {
      n += fs::exists(dir() / "cl/nodes" / NodeId(i) / "data/backups" / id);
    }
    return n;
  };
  auto committed_on = [&](const std::string& id) {
    size_t n = 0;
    for (int i = 0; i < 6; ++i) {
      n += fs::exists(dir() / "cl/nodes" / NodeId(i) / "data/backups" / id / "commit");
    }
    return n;
  };
  std::set<std::string> known;
  int run = 0;
  for (const auto& p : points) {
    SCOPED_TRACE(p.at);
    const bool node_point = p.at.rfind("node-", 0) == 0;
    if (node_point) RestartNodesWith("", "QV_CRASH_AT=" + p.at);
    const std::string cmd = "cd '" + dir().string() + "' && " +
                            (node_point ? std::string() : "QV_CRASH_AT=" + p.at) + " '" + qv_ +
                            "' backup --cluster cl/cluster.toml --key cl/coordinator.key "
                            "--commit-window 10s model >backup.out 2>&1 </dev/null";
    const int rc = std::system(cmd.c_str());
    // The id: the backup folder that is new on some node.
    std::string id;
    for (int i = 0; i < 6 && id.empty(); ++i) {
      std::error_code ec;
      for (auto& e : fs::directory_iterator(dir() / "cl/nodes" / NodeId(i) / "data/backups", ec)) {
        const std::string name = e.path().filename().string();
        if (!known.count(name)) id = name;
      }
    }
    if (id.empty()) {
      // Killed before any node prepared: nothing may be left anywhere.
      EXPECT_FALSE(p.committed) << Slurp(dir() / "backup.out");
      continue;
    }
    known.insert(id);
    // Everything back up (without crash points), then the nodes settle: a
    // prepared backup without a commit record is aborted at its deadline (the
    // 10 s commit window leaves a loaded machine time to upload it).
    RestartNodesWith("");
    for (int w = 0; w < 300; ++w) {
      const size_t f = folders(id), c = committed_on(id);
      if ((f == 0) || (c == 6 && f == 6)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const size_t f = folders(id), c = committed_on(id);
    Outcome list = Qv("list --cluster cl/cluster.toml");
    ASSERT_EQ(list.code, 0) << list.err;
    const bool listed = list.out.find(id) != std::string::npos;
    if (p.committed) {
      EXPECT_EQ(c, 6u) << "committed on " << c << " of 6; backup: " << rc << " "
                       << Slurp(dir() / "backup.out");
      EXPECT_TRUE(listed) << list.out;
      EXPECT_EQ(list.out.find("committing"), std::string::npos) << list.out;
      const std::string dest = "restored-" + std::to_string(++run);
      Outcome r = Qv("restore run --cluster cl/cluster.toml" +
                     Approved(id, "req-" + std::to_string(run)) + " --dest " + dest);
      ASSERT_EQ(r.code, 0) << r.err;
      ExpectSameTree(dir() / "model", dir() / dest);
    } else {
      EXPECT_EQ(f, 0u) << "left on " << f << " nodes";
      EXPECT_FALSE(listed) << list.out;
      size_t aborted = 0;
      for (int i = 0; i < 6; ++i) {
        const std::string log = Slurp(dir() / "cl/nodes" / NodeId(i) / "node.log");
        aborted += log.find("event=abort backup=" + id) != std::string::npos ||
                   log.find("req=abort backup=" + id) != std::string::npos;
      }
      EXPECT_GE(aborted, 1u);
    }
  }
}

// `qv node wrap-master-key` killed after each of its durable steps (the
// token's key made, the wrapped key written, node.toml pointed at it):
// the node still starts with the key it had, and running the command again
// finishes the move, so the plain key never outlives a completed wrap and
// no step loses the key. The backup restores from the same key at the end.
TEST_F(CrashTest, AWrapCutOffAtEachStepLosesNoKeyAndFinishesWhenRunAgain) {
  UseSoftHsm({"qv"});
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  const fs::path node = dir() / "cl/nodes/node-00";
  const std::string original = Slurp(node / "node.toml");
  const std::string wrap =
      "node wrap-master-key --config cl/nodes/node-00/node.toml "
      "--pkcs11 'pkcs11:token=qv;object=node-00'";
  for (const std::string point :
       {"wrap:after-token-key", "wrap:after-wrapped-file", "wrap:after-node-file"}) {
    SCOPED_TRACE(point);
    ASSERT_EQ(Qv("cluster down --dir cl").code, 0);
    const std::string cmd = "cd '" + dir().string() + "' && QV_CRASH_AT=" + point + " '" + qv_ +
                            "' " + wrap + " >wrap.out 2>&1 </dev/null";
    const int rc = std::system(cmd.c_str());
    ASSERT_TRUE(WIFSIGNALED(rc) || (WIFEXITED(rc) && WEXITSTATUS(rc) == 128 + SIGKILL))
        << Slurp(dir() / "wrap.out");
    EXPECT_TRUE(fs::exists(node / "master.key")) << "the plain key was lost";
    Outcome up = Qv("cluster up --dir cl");
    ASSERT_EQ(up.code, 0) << up.err << Slurp(node / "node.log");
    ASSERT_EQ(Qv("cluster down --dir cl").code, 0);
    Outcome again = Qv(wrap);
    ASSERT_EQ(again.code, 0) << again.err;
    EXPECT_FALSE(fs::exists(node / "master.key")) << again.out;
    EXPECT_NE(Slurp(node / "node.toml").find("master_key_pkcs11"), std::string::npos);
    // Undo for the next point: the test keeps the plain key it can read
    // back through the token.
    auto s = Pkcs11Session::Open(*Pkcs11Uri::Parse("pkcs11:token=qv;object=node-00"), "1234");
    ASSERT_TRUE(s.ok());
    auto master = (*s)->Unwrap("node-00", *ReadFileBytes(node / "master.key.wrapped", 4096),
                               AsBytes(MasterKeyContext("node-00")));
    ASSERT_TRUE(master.ok()) << master.status().message();
    s->reset();
    if (point != std::string("wrap:after-node-file")) {
      ASSERT_TRUE(WriteFileAtomic(node / "master.key", master->span(), 0600).ok());
      std::ofstream(node / "node.toml", std::ios::trunc) << original;
      fs::remove(node / "master.key.wrapped");
    }
  }
  // A wrap already complete is refused as such.
  Outcome done = Qv(wrap);
  EXPECT_EQ(done.code, 1);
  EXPECT_NE(done.err.find("already wrapped"), std::string::npos) << done.err;
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Kill9(4);
  Kill9(5);
  ASSERT_EQ(QuorumRestore(id, "restored").code, 0);
  ExpectSameTree(dir() / "model", dir() / "restored");
}

}  // namespace
}  // namespace qv
