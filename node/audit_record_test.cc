#include "node/audit_record.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "base/bytes.h"
#include "base/temp_dir.h"
#include "node/audit_log.h"

namespace qv {
namespace {

AuditEntry Sample(uint32_t version) {
  AuditEntry e;
  e.version = version;
  e.seq = 7;
  e.time = 1790000000;
  e.event = {
      "release",
      "operator",
      "00112233445566778899aabbccddeeff",
      "abcd",
      "requester=operator reply_key=ff",
      version == 1 ? AuditFields{} : AuditFields{{"reply_key", "ff"}, {"requester", "operator"}}};
  e.prev.fill(0x11);
  return e;
}

// The hashes are the log's format: pinned, so no library or refactor
// changes them unnoticed (every stored log would stop verifying).
TEST(AuditRecordTest, EntryHashesArePinnedForBothVersions) {
  EXPECT_EQ(HexEncode(Sample(1).ComputeHash()),
            "0e1ec40a46b940bd6112ff5b6ee9fa298a7df34da522d7973429ea9f4431fe5a");
  EXPECT_EQ(HexEncode(Sample(2).ComputeHash()),
            "b66c7016b9c59eab01ef94718d7cf15d850f63c4e893aa5cf176aaa8c11c0c37");
  EXPECT_EQ(HexEncode(EncodeAuditFields({{"a", "b"}})),
            "00000001000000016100000001"
            "62");
}

TEST(AuditRecordTest, FieldsAreHashedSoEditingOneBreaksTheChain) {
  AuditEntry e = Sample(2);
  e.hash = e.ComputeHash();
  AuditEntry edited = e;
  edited.event.fields[0].second = "ee";
  EXPECT_NE(edited.ComputeHash(), e.hash);
  AuditEntry dropped = e;
  dropped.event.fields.pop_back();
  EXPECT_NE(dropped.ComputeHash(), e.hash);
}

TEST(AuditRecordTest, FieldsAreCanonicalSortedUniqueAndBounded) {
  AuditFields f = CanonicalFields(
      {{"z", "1"}, {"a", "2"}, {"a", "3"}, {"", "x"}, {std::string(kMaxAuditKey + 1, 'k'), "y"}});
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], (std::pair<std::string, std::string>{"a", "2"}));
  EXPECT_EQ(f[1].first, "z");
  AuditFields many;
  for (int i = 0; i < 40; ++i) many.push_back({"k" + std::to_string(100 + i), "v"});
  EXPECT_EQ(CanonicalFields(many).size(), kMaxAuditFields);
  // Out of order on the wire is refused: one form per set of fields.
  Bytes bad = EncodeAuditFields({{"b", "1"}, {"a", "2"}});
  EXPECT_FALSE(DecodeAuditFields(bad).ok());
}

TEST(AuditRecordTest, EntryListsRoundTripAndTheV1FormIsStillRead) {
  std::vector<AuditEntry> entries = {Sample(1), Sample(2)};
  for (auto& e : entries) e.hash = e.ComputeHash();
  auto back = DecodeEntries(EncodeEntries(entries));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].version, 1u);
  EXPECT_EQ((*back)[1].version, 2u);
  EXPECT_EQ((*back)[1].event.Get("requester"), "operator");
  EXPECT_EQ((*back)[1].ComputeHash(), entries[1].hash);
  // A list in the v1 form (no marker, no versions, no fields).
  Bytes v1 = {0, 0, 0, 0};
  auto empty = DecodeEntries(v1);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

// A log written before fields existed keeps verifying after the column is
// added, and entries appended after it chain on from the old head.
TEST(AuditRecordTest, AnOlderLogIsMigratedAndItsV1EntriesStillVerify) {
  ScopedTempDir tmp("qv-audit-record");
  const auto file = tmp.path() / "audit.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE audit (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
                         "kind TEXT NOT NULL, peer TEXT NOT NULL, backup TEXT NOT NULL, request "
                         "TEXT NOT NULL, detail TEXT NOT NULL, prev BLOB NOT NULL, hash BLOB NOT "
                         "NULL)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  ChainHash prev{};
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    AuditEntry e;
    e.version = 1;
    e.seq = seq;
    e.time = 1790000000 + static_cast<int64_t>(seq);
    e.event = {"start", "", "", "", "old"};
    e.prev = prev;
    e.hash = e.ComputeHash();
    prev = e.hash;
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(db, "INSERT INTO audit VALUES (?, ?, 'start', '', '', '', 'old', ?, ?)",
                           -1, &st, nullptr),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(seq));
    sqlite3_bind_int64(st, 2, e.time);
    sqlite3_bind_blob(st, 3, e.prev.data(), 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, e.hash.data(), 32, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  auto key = SigningKey::Generate();
  FakeClock clock(1790000100);
  auto log = AuditLog::Open(file, "node-00", key->get(), &clock, 1000);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->Append({"release", "op", "", "r1", "x", {{"requester", "op"}}}).ok());
  ASSERT_TRUE((*log)->SignCheckpoint().ok());
  auto entries = (*log)->Entries(1, 100);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].version, 1u);
  EXPECT_EQ((*entries)[3].version, 2u);
  EXPECT_EQ((*entries)[3].event.Get("requester"), "op");
  EXPECT_TRUE(VerifyAuditChain(*entries, *(*log)->Checkpoints(), (*key)->public_key()).empty());
}

}  // namespace
}  // namespace qv
