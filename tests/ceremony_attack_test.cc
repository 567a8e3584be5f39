// Attacks on the restore ceremony's promises, on a real loopback cluster:
// custodians see the truth (no control sequences, the signed manifest's
// name), every release leaves durable, witnessed evidence (fail closed),
// refusal floods stay bounded, and a local failure does not burn the
// certificate while a replay by anyone else is still refused.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/wire.h"
#include "crypto/kdf.h"
#include "crypto/secretbox.h"
#include "node/audit_log.h"
#include "node/node_service.h"
#include "quorum/armor.h"
#include "tests/cluster_fixture.h"

namespace qv {
namespace {

using ::qv::testing::ExpectSameTree;

constexpr const char* kOverwrite =
    "copy weights to my laptop\r\033[2K  purpose: quarterly DR drill";

class CeremonyAttackTest : public ClusterTest {
 protected:
  // A request as a hostile requester signs it with its own key and the
  // library, skipping every check qv makes: `edit` changes the fields.
  void SignRawRequest(const std::string& id, const std::string& out,
                      const std::function<void(QuorumRequest&)>& edit) {
    auto op = SigningKey::Load(dir() / "cl/operator.key");
    ASSERT_TRUE(op.ok());
    // Start from a valid request for the backup, so only `edit` is hostile.
    Outcome r = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                   " --purpose template --out " + out + ".template");
    ASSERT_EQ(r.code, 0) << r.err;
    auto tpl = SignedRequest::Parse(*ReadFileBytes(dir() / (out + ".template"), 1 << 16));
    ASSERT_TRUE(tpl.ok());
    QuorumRequest q = tpl->request();
    edit(q);
    const Bytes body = q.CanonicalBody();
    WireWriter w;
    w.Raw(AsBytes("QVRQ")).Raw(body).Fixed((*op)->Sign(ContextMessage(kRequestContext, body)));
    ASSERT_TRUE(WriteFileAtomic(dir() / out, w.Take(), 0644).ok());
    fs::copy_file(dir() / (out + ".template.key"), dir() / (out + ".key"));
    fs::copy_file(dir() / (out + ".template.manifest"), dir() / (out + ".manifest"));
  }

  // The raw certificate bytes of a request file whose parsing qv refuses:
  // "QVQC" | blob(request) | count | blobs(approvals).
  Bytes RawCertificate(const std::string& req, const std::vector<std::string>& approvals) {
    WireWriter w;
    w.Raw(AsBytes("QVQC")).Blob(*ReadFileBytes(dir() / req, 1 << 16));
    w.U32(static_cast<uint32_t>(approvals.size()));
    for (const auto& a : approvals) w.Blob(*ReadFileBytes(dir() / a, 1 << 16));
    return w.Take();
  }

  // Every audit entry of node i, read from its database (node stopped or not).
  std::vector<AuditEntry> AuditOf(int i) {
    sqlite3* db = nullptr;
    std::vector<AuditEntry> out;
    const fs::path f = dir() / "cl/nodes" / NodeId(i) / "data/audit.db";
    EXPECT_EQ(sqlite3_open_v2(f.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT seq, kind, peer, request, detail, fields FROM audit ORDER BY seq",
                       -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      AuditEntry e;
      e.seq = sqlite3_column_int64(st, 0);
      auto text = [&](int c) {
        const unsigned char* t = sqlite3_column_text(st, c);
        return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
      };
      e.event = {text(1), text(2), "", text(3), text(4)};
      if (const void* f = sqlite3_column_blob(st, 5); f != nullptr) {  // NULL: a v1 entry
        auto fields = DecodeAuditFields(
            ByteSpan(static_cast<const uint8_t*>(f), sqlite3_column_bytes(st, 5)));
        EXPECT_TRUE(fields.ok()) << fields.status().ToString();
        if (fields.ok()) e.event.fields = *fields;
      }
      out.push_back(std::move(e));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  // Deletes node i's audit entries and checkpoints from its last `kind`
  // entry on, with the node killed first (an insider with the database).
  void DeleteFromLast(int i, const std::string& kind) {
    Kill9(i);
    uint64_t from = 0;
    for (const auto& e : AuditOf(i)) {
      if (e.event.kind == kind) from = e.seq;
    }
    ASSERT_GT(from, 0u) << kind;
    sqlite3* db = nullptr;
    const fs::path f = dir() / "cl/nodes" / NodeId(i) / "data/audit.db";
    ASSERT_EQ(sqlite3_open(f.c_str(), &db), SQLITE_OK);
    const std::string cut = std::to_string(from);
    ASSERT_EQ(sqlite3_exec(db,
                           ("DELETE FROM audit WHERE seq >= " + cut +
                            "; DELETE FROM checkpoints WHERE seq >= " + cut)
                               .c_str(),
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  }
};

bool HasRawControl(const std::string& s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
  }
  return false;
}

TEST_F(CeremonyAttackTest, ControlSequencesInARequestAreRefusedByQvAndByEveryNode) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  // qv itself will not sign it.
  Outcome r = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                 " --purpose \"$(printf 'copy weights\\r\\033[2K  purpose: DR drill')\" --out req");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("request field purpose: control character U+000D"), std::string::npos)
      << r.err;
  EXPECT_FALSE(HasRawControl(r.err)) << r.err;
  EXPECT_FALSE(fs::exists(dir() / "req"));
  // A hostile requester signs one anyway, in each readable field, and three
  // custodians' keys sign approvals: every node refuses it, naming the field.
  for (const char* field : {"purpose", "destination", "backup_name"}) {
    SCOPED_TRACE(field);
    const std::string req = std::string("evil-") + field;
    SignRawRequest(id, req, [&](QuorumRequest& q) {
      if (std::string(field) == "purpose") q.purpose = kOverwrite;
      if (std::string(field) == "destination") q.destination = "\033]0;pwned\007site-b";
      if (std::string(field) == "backup_name") q.backup_name = "model\xE2\x80\xAE";
    });
    // The custodian's qv refuses to show or sign it, and prints nothing raw.
    Outcome ap = Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c1.key " + req +
                    " --out " + req + ".c1");
    EXPECT_EQ(ap.code, 1);
    EXPECT_NE(ap.err.find(std::string("request field ") + field), std::string::npos) << ap.err;
    EXPECT_FALSE(HasRawControl(ap.err + ap.out)) << ap.err;
    EXPECT_FALSE(fs::exists(dir() / (req + ".c1")));
    for (int i = 0; i < 6; ++i) {
      auto resp = Present(i, id, RawCertificate(req, {}));
      ASSERT_TRUE(resp.ok()) << resp.status().ToString();
      EXPECT_EQ(resp->ToStatus().code(), StatusCode::kPermissionDenied);
      EXPECT_NE(resp->message.find(std::string("request field ") + field), std::string::npos)
          << resp->message;
      EXPECT_TRUE(resp->payload.empty());
    }
  }
  // Each refusal is in every node's audit log, and `qv audit log` prints
  // every entry without a raw control character.
  Outcome log = Qv("audit log --cluster cl/cluster.toml --backup " + id);
  ASSERT_EQ(log.code, 0) << log.err;
  EXPECT_FALSE(HasRawControl(log.out)) << log.out;
  for (int i = 0; i < 6; ++i) {
    EXPECT_FALSE(HasRawControl(Slurp(dir() / "cl/nodes" / NodeId(i) / "node.log"))) << NodeId(i);
  }
  for (int i = 0; i < 6; ++i) {
    size_t refused = 0;
    for (const auto& e : AuditOf(i)) {
      refused += e.event.kind == "refusal" &&
                 e.event.detail.find("unreadable certificate") != std::string::npos;
    }
    EXPECT_EQ(refused, 3u) << NodeId(i);
  }
}

TEST_F(CeremonyAttackTest, OddFileAndFolderNamesArePrintedEscapedNeverRaw) {
  fs::create_directories(dir() / "m\033[31mred");
  std::ofstream(dir() / "m\033[31mred" / "w\rts.bin") << "weights";
  std::ofstream(dir() / "m\033[31mred" / "config.json") << "{}";
  const std::string id = Backup("'m'\"$(printf '\\033')\"'[31mred'");
  ASSERT_EQ(id.size(), 32u);
  for (const std::string& cmd : std::vector<std::string>{
           "list --cluster cl/cluster.toml", "show --cluster cl/cluster.toml --backup " + id}) {
    Outcome o = Qv(cmd);
    ASSERT_EQ(o.code, 0) << o.err;
    EXPECT_FALSE(HasRawControl(o.out)) << o.out;
    EXPECT_NE(o.out.find("m\\e[31mred"), std::string::npos) << o.out;
  }
  EXPECT_NE(Qv("show --cluster cl/cluster.toml --backup " + id).out.find("w\\rts.bin"),
            std::string::npos);
  // A request for it carries the escaped name, which the nodes accept, and
  // the custodian reads it escaped.
  Outcome r = QuorumRestore(id, "restored");
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "m\033[31mred", dir() / "restored");
  Outcome ap =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c4.key req-restored "
         "--out again.c4");
  EXPECT_FALSE(HasRawControl(ap.err)) << ap.err;
  EXPECT_NE(ap.err.find("name:        m\\e[31mred"), std::string::npos) << ap.err;
}

TEST_F(CeremonyAttackTest, ABackupNameOtherThanTheSignedManifestsIsShownAndRefused) {
  ASSERT_EQ(Qv("sample --out big-model --size 1MiB --shards 2").code, 0);
  const std::string id = Backup("big-model");
  SignRawRequest(id, "req", [](QuorumRequest& q) { q.backup_name = "tiny-ci-test-model-1M"; });
  // The custodian sees the manifest's own name, size and file count beside
  // the requester's claim, and qv refuses to sign.
  Outcome ap =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c1.key req --out req.c1");
  EXPECT_EQ(ap.code, 1);
  EXPECT_NE(ap.err.find("name:        big-model"), std::string::npos) << ap.err;
  EXPECT_NE(ap.err.find("in 6 file(s)"), std::string::npos) << ap.err;
  EXPECT_NE(ap.err.find("backup name: tiny-ci-test-model-1M   (DIFFERS FROM THE MANIFEST)"),
            std::string::npos)
      << ap.err;
  EXPECT_NE(ap.err.find("do not approve"), std::string::npos) << ap.err;
  EXPECT_FALSE(fs::exists(dir() / "req.c1"));
  // A manifest that is not the one named, or not signed by the pinned
  // coordinator, is refused outright.
  std::string bytes = Slurp(dir() / "req.manifest");
  bytes[bytes.size() - 1] ^= 1;
  std::ofstream(dir() / "forged.manifest", std::ios::binary) << bytes;
  Outcome forged =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c1.key req --manifest "
         "forged.manifest --out req.c1");
  EXPECT_EQ(forged.code, 1);
  EXPECT_FALSE(fs::exists(dir() / "req.c1"));
  // Custodians who sign it anyway (with the library): every node refuses.
  for (const char* c : {"c1", "c2", "c3"}) {
    ForgeApproval(std::string("cl/custodians/") + c + ".key", c, "req", std::string("req.") + c);
  }
  Outcome run =
      Qv("restore run --cluster cl/cluster.toml --request req --approval req.c1 --approval req.c2 "
         "--approval req.c3 --dest out");
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(Count(run.err,
                  "request names backup \"tiny-ci-test-model-1M\" but its signed "
                  "manifest names \"big-model\""),
            6u)
      << run.err;
  EXPECT_FALSE(fs::exists(dir() / "out"));
}

TEST_F(CeremonyAttackTest, WhatANodeWouldRefuseIsNotSigned) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  Outcome r = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                 " --purpose drill --ttl 2d --out req");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--ttl 2d exceeds the backup's policy maximum of 1d"), std::string::npos)
      << r.err;
  for (const char* f : {"req", "req.key", "req.manifest"}) EXPECT_FALSE(fs::exists(dir() / f));
  ASSERT_EQ(Qv("restore request --cluster cl/cluster.toml --backup " + id +
               " --purpose drill --ttl 1d --out req")
                .code,
            0);
  Outcome note =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c1.key req "
         "--out req.c1 --note " +
         std::string(1025, 'n'));
  EXPECT_EQ(note.code, 1);
  EXPECT_NE(note.err.find("approval note: 1025 bytes, at most 1024"), std::string::npos)
      << note.err;
  EXPECT_FALSE(fs::exists(dir() / "req.c1"));
  // A requester's own key, or a key no policy lists, is not signed either.
  ASSERT_EQ(Qv("keygen --out stranger.key").code, 0);
  Outcome stranger =
      Qv("approve --yes --cluster cl/cluster.toml --key stranger.key req --out req.x");
  EXPECT_EQ(stranger.code, 1);
  EXPECT_NE(stranger.err.find("not a custodian of this backup's policy"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir() / "req.x"));
  // An expired request is not signed: the custodian is told, nothing is written.
  const int64_t two_hours_ago = static_cast<int64_t>(std::time(nullptr)) - 7200;
  ASSERT_EQ(
      Qv("restore request --cluster cl/cluster.toml --backup " + id +
         " --purpose old --ttl 1h --valid-from " + std::to_string(two_hours_ago) + " --out old")
          .code,
      0);
  Outcome expired =
      Qv("approve --yes --cluster cl/cluster.toml --key cl/custodians/c1.key old --out old.c1");
  EXPECT_EQ(expired.code, 1);
  EXPECT_NE(expired.err.find("(EXPIRED)"), std::string::npos) << expired.err;
  EXPECT_NE(expired.err.find("request expired"), std::string::npos) << expired.err;
  EXPECT_NE(expired.err.find("nothing signed"), std::string::npos) << expired.err;
  EXPECT_FALSE(fs::exists(dir() / "old.c1"));
}

// Node-00's audit database is locked by another writer (as a full disk or
// a failing device would stop its appends): node-00 releases nothing and
// says why; the others, whose logs work, release, and the restore succeeds.
TEST_F(CeremonyAttackTest, ANodeThatCannotWriteItsAuditEntryReleasesNothing) {
  ASSERT_EQ(Qv("sample --out model --size 512KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  sqlite3* db = nullptr;
  const fs::path audit = dir() / "cl/nodes/node-00/data/audit.db";
  ASSERT_EQ(sqlite3_open(audit.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);  // the node may be writing a witness record right now
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  Outcome r = QuorumRestore(id, "restored", {"c1", "c2", "c3"}, "--json");
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  const std::string problems = nlohmann::json::parse(r.out)["problems"].dump();
  EXPECT_NE(problems.find("node-00: the audit log cannot be written"), std::string::npos)
      << problems;
  EXPECT_NE(problems.find("nothing is released without its audit entry"), std::string::npos);
  // Node-00 said so in its log, and its audit trail holds no release.
  EXPECT_NE(Slurp(dir() / "cl/nodes/node-00/node.log").find("audit log unavailable"),
            std::string::npos);
  for (const auto& e : AuditOf(0)) EXPECT_NE(e.event.kind, "release");
  size_t released = 0;
  for (int i = 1; i < 6; ++i) {
    for (const auto& e : AuditOf(i)) released += e.event.kind == "release";
  }
  EXPECT_EQ(released, 5u);
}

TEST_F(CeremonyAttackTest, EachApprovalIsAuditedWithItsVerificationResult) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(
      Qv("restore request --cluster cl/cluster.toml --backup " + id + " --purpose drill --out req")
          .code,
      0);
  ForgeApproval("cl/custodians/c1.key", "c1", "req", "req.c1");
  // c2 and c3 never signed: their approvals are made with other keys.
  ForgeApproval("cl/custodians/c4.key", "c2", "req", "req.c2");
  ASSERT_EQ(Qv("keygen --out stranger.key").code, 0);
  ForgeApproval("stranger.key", "c3", "req", "req.c3");
  Outcome run =
      Qv("restore run --cluster cl/cluster.toml --request req --approval req.c1 --approval req.c2 "
         "--approval req.c3 --dest out");
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(Count(run.err, "unknown custodian c2; unknown custodian c3"), 6u) << run.err;
  for (int i = 0; i < 6; ++i) {
    std::map<std::string, std::string> result, field;
    for (const auto& e : AuditOf(i)) {
      if (e.event.kind != "approval") continue;
      result[e.event.detail.substr(0, 12)] = e.event.detail;
      field[e.event.Get("custodian").value_or("?")] = e.event.Get("result").value_or("?");
    }
    // The fields `qv audit log` reads say the same as the text.
    EXPECT_EQ(field,
              (std::map<std::string, std::string>{
                  {"c1", "valid"}, {"c2", "unknown custodian"}, {"c3", "unknown custodian"}}));
    // The result, then when the custodian signed and its note (ForgeApproval
    // signs "now" with no note).
    auto head = [](const std::string& d) { return d.substr(0, d.find(" signed=")); };
    EXPECT_EQ(head(result["custodian=c1"]), "custodian=c1 decision=approve result=valid");
    EXPECT_EQ(head(result["custodian=c2"]),
              "custodian=c2 decision=approve result=\"unknown custodian\"");
    EXPECT_EQ(head(result["custodian=c3"]),
              "custodian=c3 decision=approve result=\"unknown custodian\"");
    EXPECT_NE(result["custodian=c1"].find(" signed=17"), std::string::npos);
    EXPECT_EQ(result["custodian=c1"].substr(result["custodian=c1"].size() - 8), " note=\"\"");
  }
}

// An insider with the database deletes node-02's newest entries (the
// release) and checkpoints after a kill -9. Since the node checkpointed
// right after the release and a witness round has passed, the peers hold
// a countersigned checkpoint past what is left: audit verify names it.
TEST_F(CeremonyAttackTest, AReleaseDeletedAfterOneWitnessRoundIsCaught) {
  // Checkpoints every 1000 entries: only the one each release makes can
  // cover it.
  Reconfigure({{"checkpoint_every = 4", "checkpoint_every = 1000"}});
  WitnessEvery(1000);
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(QuorumRestore(id, "restored").code, 0);
  AwaitWitnessRound();
  DeleteFromLast(2, "request");  // the request, its approvals, release and receipt
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Outcome v = Qv("audit verify --cluster cl/cluster.toml");
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.out.find("cross-node: node-02: "), std::string::npos) << v.out;
  EXPECT_TRUE(v.out.find("(truncated)") != std::string::npos ||
              v.out.find("(history rewritten)") != std::string::npos)
      << v.out;
  EXPECT_NE(v.out.find("AUDIT FAILED"), std::string::npos);
}

// The same deletion inside the window no witness has covered yet (here the
// witnesses never run): the receipts the restore left on the other
// releasing nodes still name node-02 as a releaser.
TEST_F(CeremonyAttackTest, AReleaseDeletedBeforeAnyWitnessRoundIsCaughtByThePeersReceipts) {
  Reconfigure({{"checkpoint_every = 4", "checkpoint_every = 1000"}});
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(QuorumRestore(id, "restored").code, 0);
  DeleteFromLast(2, "request");
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Outcome v = Qv("audit verify --cluster cl/cluster.toml");
  EXPECT_EQ(v.code, 1);
  EXPECT_NE(v.out.find("cross-node: node-02: released request "), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("'s receipt says so) but its log has no release for it (deleted)"),
            std::string::npos)
      << v.out;
  EXPECT_EQ(Count(v.out, "has no release"), 1u) << v.out;
  EXPECT_NE(v.out.find("node-02    chain intact"), std::string::npos) << v.out;
}

TEST_F(CeremonyAttackTest, AFloodOfUnpinnedHandshakesIsAuditedAsAFewCountedEntries) {
  constexpr int kFlood = 300;
  for (int i = 0; i < kFlood; ++i) {
    auto stranger = SigningKey::Generate();
    auto c = NodeClient::Connect(cluster_.nodes[0], **stranger);
    if (!c.ok()) continue;
    Request r;
    r.op = Op::kHealth;
    (void)(*c)->Call(r);  // the node's one answer: not pinned
  }
  Qv("cluster down --dir cl");  // the node audits the counts it holds at stop
  size_t entries = 0;
  std::string counted;
  for (const auto& e : AuditOf(0)) {
    if (e.event.kind != "refusal") continue;
    ++entries;
    if (e.event.detail.find("more refusals") != std::string::npos) counted = e.event.detail;
  }
  EXPECT_LE(entries, 4u);
  EXPECT_GE(entries, 2u);
  EXPECT_NE(counted.find("connection from 127.0.0.1: key not pinned, "), std::string::npos)
      << counted;
  // Every refusal is counted: the first entries plus the counts add up.
  uint64_t total = 0;
  for (const auto& e : AuditOf(0)) {
    if (e.event.kind != "refusal") continue;
    const size_t p = e.event.detail.find("pinned, ");
    total += p == std::string::npos ? 1 : std::stoull(e.event.detail.substr(p + 8));
  }
  EXPECT_EQ(total, uint64_t{kFlood});
  // The node's own log is bounded the same way: one line, then the count.
  const std::string log = Slurp(dir() / "cl/nodes/node-00/node.log");
  EXPECT_EQ(Count(log, "event=refused "), 1u);
  EXPECT_EQ(Count(log, "event=refused-flood address=127.0.0.1 count=" + std::to_string(kFlood - 1)),
            1u)
      << log;
}

// The restore process is killed after the nodes released: the same
// certificate restores, presented again by the holder of the reply key
// (logged as a retry), a bounded number of times; without the key it is a
// replay. With too few nodes reachable it is not presented at all.
TEST_F(CeremonyAttackTest, ALocalFailureDoesNotBurnTheCertificate) {
  ASSERT_EQ(Qv("sample --out model --size 96MiB --shards 2").code, 0);
  const std::string id = Backup("model");
  // Three nodes down: k=4 fragments cannot be had, so nothing is presented.
  Kill9(0);
  Kill9(2);
  Kill9(4);
  ASSERT_EQ(
      Qv("restore request --cluster cl/cluster.toml --backup " + id + " --purpose drill --out req")
          .code,
      0);
  std::string approvals;
  for (const char* c : {"c1", "c2", "c3"}) {
    ASSERT_EQ(Qv(std::string("approve --yes --cluster cl/cluster.toml --key cl/custodians/") + c +
                 ".key req --out req." + c)
                  .code,
              0);
    approvals += std::string(" --approval req.") + c;
  }
  const std::string run = "restore run --cluster cl/cluster.toml --request req" + approvals;
  Outcome early = Qv(run + " --dest out0");
  EXPECT_EQ(early.code, 1);
  EXPECT_NE(early.err.find("3 of the backup's 6 nodes are reachable"), std::string::npos)
      << early.err;
  EXPECT_NE(early.err.find("the certificate was not presented"), std::string::npos);
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  for (int i = 0; i < 6; ++i) {
    for (const auto& e : AuditOf(i)) EXPECT_NE(e.event.kind, "request") << NodeId(i);
  }
  // Killed mid-restore, after the releases.
  const std::string cmd = "cd '" + dir().string() + "' && exec '" + qv_ + "' " + run +
                          " --dest out1 >/dev/null 2>&1 </dev/null";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  bool released = false;  // by all six nodes
  for (int w = 0; w < 5000 && !released; ++w) {
    released = true;
    for (int i = 0; i < 6; ++i) {
      released &= Slurp(dir() / "cl/nodes" / NodeId(i) / "node.log").find("req=release") !=
                  std::string::npos;
    }
    if (!released) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(released);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the restore finished before it could be killed";
  ASSERT_FALSE(fs::exists(dir() / "out1"));
  // The holder of the reply key presents it again: restored, logged as a
  // retry. (A copy of the key is kept for the checks below: the restore
  // deletes it once it has succeeded.)
  fs::copy_file(dir() / "req.key", dir() / "kept.key");
  Outcome again = Qv(run + " --dest out2");
  ASSERT_EQ(again.code, 0) << again.err;
  ExpectSameTree(dir() / "model", dir() / "out2");
  EXPECT_FALSE(fs::exists(dir() / "req.key")) << "the one-time secret outlived the restore";
  EXPECT_NE(again.out.find("deleted req.key"), std::string::npos) << again.out;
  size_t retries = 0;
  for (int i = 0; i < 6; ++i) {
    for (const auto& e : AuditOf(i)) retries += e.event.kind == "retry";
  }
  EXPECT_EQ(retries, 6u);
  // Anyone without the key (a made-up proof) is refused as a replay.
  const Bytes cert = CertificateFrom("req", {"req.c1", "req.c2", "req.c3"}).Encode();
  auto replay = Present(5, id, cert, Bytes(32, 1));
  ASSERT_TRUE(replay.ok());
  EXPECT_NE(replay->message.find("replayed"), std::string::npos) << replay->message;
  EXPECT_TRUE(replay->payload.empty());
  // The key holder's retries are bounded: two more, then refused.
  auto reply_secret = ReadSecretFile(dir() / "kept.key", 32);
  ASSERT_TRUE(reply_secret.ok());
  auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / "req", 1 << 16));
  BoxKeyPair reply{sr->request().reply_key, std::move(reply_secret).value()};
  auto x = X25519PublicFromEd25519(cluster_.nodes[5].public_key);
  auto proof = ProvePossession(reply, *x, AsBytes(ReleaseRetryContext(sr->id(), "node-05")));
  ASSERT_TRUE(proof.ok());
  const Bytes p(proof->begin(), proof->end());
  for (int k = 0; k < 3; ++k) {
    auto resp = Present(5, id, cert, p);
    ASSERT_TRUE(resp.ok());
    // node-05 released at the first presentation and the retry of out2:
    // this node allows 3 retries in all, so the third here is one too many.
    if (k < 2) {
      EXPECT_TRUE(resp->ToStatus().ok()) << k << " " << resp->message;
      EXPECT_FALSE(resp->payload.empty());
    } else {
      EXPECT_NE(resp->message.find("was already retried 3 times"), std::string::npos)
          << resp->message;
      EXPECT_TRUE(resp->payload.empty());
    }
  }
  // A proof made for node-05 is worthless at node-04.
  auto elsewhere = Present(4, id, cert, p);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_NE(elsewhere->message.find("replayed"), std::string::npos) << elsewhere->message;
  EXPECT_EQ(Qv("audit verify --cluster cl/cluster.toml").code, 0);
}

TEST_F(CeremonyAttackTest, ANodeWithAReplacedMasterKeyRefusesToStart) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  Backup("model");
  Qv("cluster down --dir cl");
  const fs::path key = dir() / "cl/nodes/node-03/master.key";
  std::string k = Slurp(key);
  k[0] ^= 1;  // a corrupted (or replaced) master key
  std::ofstream(key, std::ios::binary | std::ios::trunc) << k;
  Outcome run = Qv("node run --config cl/nodes/node-03/node.toml");
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.err.find("the master key does not match this node's data"), std::string::npos)
      << run.err;
  Outcome up = Qv("cluster up --dir cl");
  EXPECT_EQ(up.code, 1);
  EXPECT_NE(up.err.find("node-03 refused to start: permission denied: the master key does not"),
            std::string::npos)
      << up.err;
  Outcome status = Qv("status --cluster cl/cluster.toml");
  EXPECT_EQ(status.code, 1);
  EXPECT_NE(status.out.find("node-03    site-b   "), std::string::npos);
  EXPECT_NE(status.out.find("DOWN"), std::string::npos) << status.out;
}

TEST_F(CeremonyAttackTest, ListAndStatusSayWhyNothingAnswered) {
  ASSERT_EQ(Qv("keygen --out stranger.key").code, 0);
  Outcome st = Qv("status --cluster cl/cluster.toml --key stranger.key");
  EXPECT_EQ(st.code, 1);
  EXPECT_NE(st.err.find("no node pins this key (stranger.key)"), std::string::npos) << st.err;
  Outcome unpinned = Qv("list --cluster cl/cluster.toml --key stranger.key");
  EXPECT_EQ(unpinned.code, 1);
  EXPECT_NE(unpinned.err.find("no node answered"), std::string::npos) << unpinned.err;
  EXPECT_NE(unpinned.err.find("is not pinned"), std::string::npos) << unpinned.err;
  Qv("cluster down --dir cl");
  Outcome down = Qv("list --cluster cl/cluster.toml");
  EXPECT_EQ(down.code, 1);
  EXPECT_NE(down.err.find("no node answered"), std::string::npos) << down.err;
  EXPECT_EQ(down.out, "");
  // No error repeats a node's name.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(down.err.find(NodeId(i) + ": " + NodeId(i)), std::string::npos) << down.err;
    EXPECT_EQ(Count(down.err, NodeId(i)), 1u) << down.err;
  }
}

// Two custodians deny; the requester builds a certificate from the three
// approvals alone. Their denials, posted to the nodes by qv approve --deny,
// veto it on every node: refused, nothing released, and audited.
TEST_F(CeremonyAttackTest, ADenialLeftOutOfTheCertificateStillVetoesTheRequest) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(
      Qv("restore request --cluster cl/cluster.toml --backup " + id + " --purpose test --out req")
          .code,
      0);
  for (const char* c : {"c1", "c2", "c3"}) {
    ASSERT_EQ(Qv(std::string("approve --yes --cluster cl/cluster.toml --key cl/custodians/") + c +
                 ".key req --out req." + c)
                  .code,
              0);
  }
  for (const char* c : {"c4", "c5"}) {
    Outcome d = Qv(std::string("approve --yes --deny --cluster cl/cluster.toml --key "
                               "cl/custodians/") +
                   c + ".key req --out req." + c);
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_NE(d.out.find("the denial is recorded by 6 of 6 nodes"), std::string::npos) << d.out;
  }
  Outcome run =
      Qv("restore run --cluster cl/cluster.toml --request req --approval req.c1 "
         "--approval req.c2 --approval req.c3 --dest out");
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.err.find("denied by c4 (earlier), c5 (earlier)"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(dir() / "out"));
  for (int i = 0; i < 6; ++i) {
    size_t denials = 0, releases = 0;
    for (const auto& e : AuditOf(i)) {
      denials += e.event.kind == "denial";
      releases += e.event.kind == "release";
    }
    EXPECT_EQ(denials, 2u) << NodeId(i);
    EXPECT_EQ(releases, 0u) << NodeId(i);
  }
  // A forged "denial" (a stranger's key claiming c1) is not taken.
  ASSERT_EQ(Qv("keygen --out stranger.key").code, 0);
  ForgeApproval("stranger.key", "c1", "req", "req.fake", /*approve=*/false);
  auto key = SigningKey::Load(dir() / "cl/operator.key");
  auto c = NodeClient::Connect(cluster_.nodes[0], **key);
  ASSERT_TRUE(c.ok());
  Request post;
  post.op = Op::kPostDenial;
  post.backup_id = *BackupIdFromText(id);
  post.payload = CertificateFrom("req", {"req.fake"}).Encode();
  auto resp = (*c)->Call(post);
  ASSERT_TRUE(resp.ok());
  EXPECT_NE(resp->message.find("unknown custodian"), std::string::npos) << resp->message;
}

// The ceremony through the cluster (issue 16): submitted, listed and
// approved by three custodians from their own keys, restored by id with no
// files passed around; the file flow still works beside it.
TEST_F(CeremonyAttackTest, TheWholeCeremonyRunsThroughTheCluster) {
  ASSERT_EQ(Qv("sample --out model --size 1MiB --shards 1").code, 0);
  const std::string id = Backup("model");
  Outcome sub = Qv("restore request --cluster cl/cluster.toml --backup " + id +
                   " --purpose 'DR drill' --destination dr-site --out req --submit");
  ASSERT_EQ(sub.code, 0) << sub.err;
  EXPECT_NE(sub.out.find("submitted to 6 of 6 nodes"), std::string::npos) << sub.out;
  auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / "req", 1 << 16));
  ASSERT_TRUE(sr.ok());
  const std::string rid = RequestIdToText(sr->id());
  for (const char* c : {"c1", "c2", "c3"}) {
    const std::string key = std::string(" --key cl/custodians/") + c + ".key";
    Outcome list = Qv("pending --cluster cl/cluster.toml --json" + key);
    ASSERT_EQ(list.code, 0) << list.err;
    auto j = nlohmann::json::parse(list.out);
    ASSERT_EQ(j.size(), 1u) << list.out;
    EXPECT_EQ(j[0]["request_id"], rid);
    EXPECT_EQ(j[0]["purpose"], "DR drill");
    EXPECT_EQ(j[0]["destination"], "dr-site");
    EXPECT_EQ(j[0]["requester"], "operator");
    Outcome ok =
        Qv("approve --yes --cluster cl/cluster.toml" + key + " --request " + rid.substr(0, 12));
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find("posted to 6 of 6 nodes"), std::string::npos) << ok.out;
    EXPECT_NE(ok.err.find("purpose:     DR drill"), std::string::npos) << ok.err;
  }
  Outcome shown = Qv("pending --cluster cl/cluster.toml --key cl/custodians/c4.key");
  EXPECT_NE(shown.out.find("approvals:   3 of 3: c1, c2, c3"), std::string::npos) << shown.out;
  Outcome run = Qv("restore run --cluster cl/cluster.toml --request req --dest restored");
  ASSERT_EQ(run.code, 0) << run.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
  // Spent: it waits for nobody any more.
  Outcome after = Qv("pending --cluster cl/cluster.toml --key cl/custodians/c4.key");
  EXPECT_NE(after.out.find("no pending requests"), std::string::npos) << after.out;
  // The file flow, unchanged, beside it.
  Outcome file = QuorumRestore(id, "restored-by-files");
  ASSERT_EQ(file.code, 0) << file.err;
  ExpectSameTree(dir() / "model", dir() / "restored-by-files");
}

TEST_F(CeremonyAttackTest, PendingRequestsAndVotesFromTheWrongKeysOrFloodsAreRefusedAndAudited) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(Qv("restore request --cluster cl/cluster.toml --backup " + id +
               " --purpose drill --out req --submit")
                .code,
            0);
  auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / "req", 1 << 16));
  ASSERT_TRUE(sr.ok());
  auto call = [&](const std::string& key, Request r) {
    auto k = SigningKey::Load(dir() / key);
    auto c = NodeClient::Connect(cluster_.nodes[2], **k);
    EXPECT_TRUE(c.ok());
    auto resp = (*c)->Call(r);
    EXPECT_TRUE(resp.ok());
    return *resp;
  };
  // A request by a requester the cluster file does not list, carried by
  // the operator: refused (requests come only from their own requester, and
  // that one is not listed anyway).
  auto stranger = std::move(SigningKey::Generate()).value();
  QuorumRequest q = sr->request();
  q.requester_key = stranger->public_key();
  q.requester_id = "mallory";
  Request submit;
  submit.op = Op::kSubmitRequest;
  submit.backup_id = q.backup_id;
  submit.payload = SignedRequest::Sign(q, *stranger)->encoded();
  Response r1 = call("cl/operator.key", submit);
  EXPECT_EQ(r1.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r1.message.find("only its own"), std::string::npos) << r1.message;
  // An approval signed by a key that is no custodian, posted by custodian
  // c1 under c1's name: refused, whoever carries it.
  Request vote;
  vote.op = Op::kPostApproval;
  vote.backup_id = q.backup_id;
  vote.payload = Approval::Sign(*sr, *stranger, "c1", true, "", std::time(nullptr))->Encode();
  Response r2 = call("cl/custodians/c1.key", vote);
  EXPECT_EQ(r2.ToStatus().code(), StatusCode::kPermissionDenied);
  // Custodian c1 carrying c2's genuine approval: refused, a vote's poster
  // is its signer (c2 has not chosen to post it).
  auto c2 = SigningKey::Load(dir() / "cl/custodians/c2.key");
  vote.payload = Approval::Sign(*sr, **c2, "c2", true, "", std::time(nullptr))->Encode();
  Response r3 = call("cl/custodians/c1.key", vote);
  EXPECT_EQ(r3.ToStatus().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r3.message.find("a custodian posts only its own approvals"), std::string::npos)
      << r3.message;
  // The requester cannot post votes at all, not even genuine ones.
  EXPECT_EQ(call("cl/operator.key", vote).ToStatus().code(), StatusCode::kPermissionDenied);
  // None of it counted.
  Outcome list = Qv("pending --cluster cl/cluster.toml --key cl/custodians/c3.key");
  EXPECT_NE(list.out.find("approvals:   0 of 3"), std::string::npos) << list.out;
  // A flood of submissions from one requester: 30 a minute, then refused;
  // the first refusal is audited, the rest only logged.
  submit.payload = sr->encoded();
  int refused = 0;
  for (int i = 0; i < 40; ++i) {
    refused += call("cl/operator.key", submit).message.find("rate limit") != std::string::npos;
  }
  EXPECT_GE(refused, 9);
  int audited = 0;
  for (const auto& e : AuditOf(2)) {
    audited += e.event.kind == "refusal" && e.event.detail.find("rate limit") != std::string::npos;
  }
  EXPECT_EQ(audited, 1);
  int refusals = 0;
  for (const auto& e : AuditOf(2)) {
    refusals += e.event.kind == "refusal" &&
                (e.event.detail.find("only its own") != std::string::npos ||
                 e.event.detail.find("unknown custodian") != std::string::npos ||
                 e.event.detail.find("post-approval is not allowed") != std::string::npos);
  }
  EXPECT_GE(refusals, 3);
}

// A node config's on_pending program runs for each new pending request
// with its id and summary as arguments: never through a shell, so a
// requester's words cannot run commands on the node.
TEST_F(CeremonyAttackTest, TheOnPendingProgramGetsTheIdAndSummaryAndNoShell) {
  const fs::path hook = dir() / "hook.sh";
  std::ofstream(hook) << "#!/bin/sh\nprintf '%s\\n%s\\n' \"$1\" \"$2\" > \"" << dir().string()
                      << "/hook.$$\"\n";
  fs::permissions(hook, fs::perms::owner_all);
  RestartNodesWith("on_pending_command = \"" + hook.string() + "\"\n");
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  Outcome sub =
      Qv("restore request --cluster cl/cluster.toml --backup " + id + " --purpose 'drill $(touch " +
         (dir() / "pwned").string() + ")' --out req --submit");
  ASSERT_EQ(sub.code, 0) << sub.err;
  auto sr = SignedRequest::Parse(*ReadFileBytes(dir() / "req", 1 << 16));
  ASSERT_TRUE(sr.ok());
  int calls = 0;
  for (int wait = 0; wait < 100 && calls < 6; ++wait) {
    calls = 0;
    for (auto& e : fs::directory_iterator(dir())) {
      calls += e.path().filename().string().rfind("hook.", 0) == 0 &&
               e.path().extension() != ".sh" &&
               Slurp(e.path()).find(RequestIdToText(sr->id()) + "\nrestore of " + id) == 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(calls, 6);  // once per node
  EXPECT_FALSE(fs::exists(dir() / "pwned"));
  // The node logs each run's outcome once the program has exited.
  bool logged = false;
  for (int wait = 0; wait < 100 && !logged; ++wait) {
    logged = Slurp(dir() / "cl/nodes/node-00/node.log").find("event=on-pending request=") !=
             std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(logged);
}

// `qv audit log` reads as one line per event across the cluster: the
// nodes that recorded it grouped, the custodian as the actor of its
// approval with when it signed and its note, readable expiry times, the
// filters; and a node whose record of an approval differs is flagged.
TEST_F(CeremonyAttackTest, TheAuditLogIsOneLinePerEventWithTheCustodianAsActor) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(Qv("restore request --cluster cl/cluster.toml --backup " + id +
               " --purpose 'audit drill' --out req")
                .code,
            0);
  std::string approvals;
  for (const char* c : {"c1", "c2", "c3"}) {
    ASSERT_EQ(Qv(std::string("approve --yes --cluster cl/cluster.toml --key cl/custodians/") + c +
                 ".key req --out req." + c + " --note 'ticket OPS-42 " + c + "'")
                  .code,
              0);
    approvals += std::string(" --approval req.") + c;
  }
  ASSERT_EQ(
      Qv("restore run --cluster cl/cluster.toml --request req" + approvals + " --dest out").code,
      0);
  const std::string rid =
      RequestIdToText(SignedRequest::Parse(*ReadFileBytes(dir() / "req", 1 << 16))->id());
  Outcome log = Qv("audit log --cluster cl/cluster.toml --request " + rid.substr(0, 8));
  ASSERT_EQ(log.code, 0) << log.err;
  auto lines_with = [&](const std::string& text, const std::string& what) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.find(what) != std::string::npos) out.push_back(line);
    }
    return out;
  };
  // The request once, seen by all six nodes, with its expiry readable.
  auto requests = lines_with(log.out, "  request  ");
  ASSERT_EQ(requests.size(), 1u) << log.out;
  EXPECT_NE(requests[0].find("node-00,01,02,03,04,05"), std::string::npos) << requests[0];
  EXPECT_NE(requests[0].find("for \"audit drill\""), std::string::npos) << requests[0];
  EXPECT_NE(requests[0].find(", expires 20"), std::string::npos) << requests[0];
  // Each approval once, its custodian the actor, with time signed and note.
  for (const char* c : {"c1", "c2", "c3"}) {
    auto a = lines_with(log.out, std::string("note \"ticket OPS-42 ") + c + "\"");
    ASSERT_EQ(a.size(), 1u) << log.out;
    EXPECT_NE(a[0].find(std::string(" ") + c + " "), std::string::npos) << a[0];
    EXPECT_NE(a[0].find("approved, signed 20"), std::string::npos) << a[0];
    EXPECT_EQ(a[0].find("DISAGREE"), std::string::npos) << a[0];
  }
  auto releases = lines_with(log.out, "  release  ");
  ASSERT_EQ(releases.size(), 1u) << "one line, the releasing nodes grouped: " << log.out;
  EXPECT_NE(releases[0].find("node-0"), std::string::npos);
  // Filters.
  auto count = [&](const std::string& args) {
    return nlohmann::json::parse(Qv("audit log --cluster cl/cluster.toml --json " + args).out)
        .size();
  };
  EXPECT_EQ(count("--request " + rid.substr(0, 8) + " --last 2"), 2u);
  EXPECT_EQ(count("--since 2199-01-01"), 0u);
  EXPECT_GT(count("--since 1h"), count("--request " + rid.substr(0, 8)));
  EXPECT_EQ(Qv("audit log --cluster cl/cluster.toml --request ab").code, 1);
  // An insider rewrites node-03's record of c2's approval as refused:
  // audit log flags the nodes' disagreement (and audit verify the chain).
  Kill9(3);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir() / "cl/nodes/node-03/data/audit.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT seq, fields FROM audit WHERE kind = 'approval'", -1, &st, nullptr);
  int64_t seq = 0;
  Bytes fields;
  while (sqlite3_step(st) == SQLITE_ROW) {
    auto f = DecodeAuditFields(ByteSpan(static_cast<const uint8_t*>(sqlite3_column_blob(st, 1)),
                                        sqlite3_column_bytes(st, 1)));
    ASSERT_TRUE(f.ok());
    AuditEvent e{"approval", "", "", "", "", *f};
    if (e.Get("custodian") == "c2") {
      seq = sqlite3_column_int64(st, 0);
      for (auto& [k, v] : *f) {
        if (k == "result") v = "unknown custodian";
      }
      fields = EncodeAuditFields(*f);
    }
  }
  sqlite3_finalize(st);
  ASSERT_GT(seq, 0);
  sqlite3_prepare_v2(db, "UPDATE audit SET fields = ? WHERE seq = ?", -1, &st, nullptr);
  sqlite3_bind_blob(st, 1, fields.data(), static_cast<int>(fields.size()), SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, seq);
  ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
  ASSERT_EQ(Qv("cluster up --dir cl").code, 0);
  Outcome after = Qv("audit log --cluster cl/cluster.toml --request " + rid.substr(0, 8));
  auto c2 = lines_with(after.out, "note \"ticket OPS-42 c2\"");
  ASSERT_EQ(c2.size(), 2u) << after.out;
  for (const auto& line : c2) EXPECT_NE(line.find("[NODES DISAGREE]"), std::string::npos) << line;
  EXPECT_NE(Qv("audit verify --cluster cl/cluster.toml").code, 0);
}

// Requests and approvals as ASCII armor: pasted into a chat (CRLF,
// indentation, a greeting around them) they still drive the ceremony, and
// the bytes inside are the signed bytes, exactly.
TEST_F(CeremonyAttackTest, ArmoredRequestsAndApprovalsSurviveAPasteByteExact) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 1").code, 0);
  const std::string id = Backup("model");
  ASSERT_EQ(Qv("restore request --armor --cluster cl/cluster.toml --backup " + id.substr(0, 6) +
               " --purpose drill --out req")
                .code,
            0);
  const std::string armored = Slurp(dir() / "req");
  EXPECT_EQ(armored.rfind("-----BEGIN QUORUMVAULT REQUEST-----\n", 0), 0u) << armored;
  EXPECT_FALSE(HasRawControl(armored));
  auto raw = Dearmor(AsBytes(armored), kArmorRequest);
  ASSERT_TRUE(raw.ok());
  auto sr = SignedRequest::Parse(*raw);
  ASSERT_TRUE(sr.ok()) << sr.status().ToString();
  EXPECT_EQ(Armor(kArmorRequest, sr->encoded()), armored) << "byte-exact both ways";
  std::string approvals;
  for (const char* c : {"c1", "c2", "c3"}) {
    Outcome ap = Qv(std::string("approve --yes --armor --cluster cl/cluster.toml --key "
                                "cl/custodians/") +
                    c + ".key req --out req." + c);
    ASSERT_EQ(ap.code, 0) << ap.err;
    approvals += std::string(" --approval req.") + c;
  }
  // c2's approval goes through a chat: CRLF, indentation, words around it.
  std::string chat = "c2 here, approved:\r\n";
  std::istringstream in(Slurp(dir() / "req.c2"));
  for (std::string line; std::getline(in, line);) chat += "  " + line + "\r\n";
  chat += "cheers\r\n";
  std::ofstream(dir() / "req.c2", std::ios::trunc) << chat;
  // A request armored as an approval is refused as such.
  fs::copy_file(dir() / "req", dir() / "req.wrong");
  Outcome wrong =
      Qv("restore run --cluster cl/cluster.toml --request req --approval req.wrong"
         " --dest nope");
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.err.find("armored REQUEST where an armored APPROVAL belongs"), std::string::npos)
      << wrong.err;
  Outcome run =
      Qv("restore run --cluster cl/cluster.toml --request req" + approvals + " --dest restored");
  ASSERT_EQ(run.code, 0) << run.err;
  ExpectSameTree(dir() / "model", dir() / "restored");
}

}  // namespace
}  // namespace qv
