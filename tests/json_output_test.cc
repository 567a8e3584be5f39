// Every verb that prints takes --json, and what it prints is JSON a real
// parser reads (issue 17), with times in RFC 3339; on a real loopback
// cluster, through a whole ceremony.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "tests/cluster_fixture.h"

namespace qv {
namespace {

class JsonOutputTest : public ClusterTest {
 protected:
  // Runs qv with --json; the output must parse, and every time in it must
  // be RFC 3339 in UTC. Returns the value.
  nlohmann::json Json(const std::string& args, int want_code = 0) {
    Outcome o = Qv(args + " --json");
    EXPECT_EQ(o.code, want_code) << args << ": " << o.err;
    auto j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << args << " printed: " << o.out;
    CheckTimes(j, args);
    ++verbs_;
    return j;
  }
  void CheckTimes(const nlohmann::json& j, const std::string& args) {
    if (j.is_object() || j.is_array()) {
      for (const auto& v : j) CheckTimes(v, args);
      return;
    }
    if (!j.is_string()) return;
    const std::string s = j.get<std::string>();
    // 2026-12-01T13:38:43Z: four digits, '-', ..., 'T', ..., 'Z'.
    if (s.size() >= 11 && s[4] == '-' && s[7] == '-' && s[10] == 'T') {
      EXPECT_EQ(s.size(), 20u) << args << ": " << s;
      EXPECT_EQ(s.back(), 'Z') << args << ": " << s;
    }
  }
  int verbs_ = 0;
};

TEST_F(JsonOutputTest, EveryVerbThatPrintsTakesJsonThatParses) {
  ASSERT_EQ(Qv("sample --out model --size 256KiB --shards 2").code, 0);
  const std::string c = " --cluster cl/cluster.toml";
  auto b = Json("backup" + c + " --key cl/coordinator.key --name m --tag t1 model");
  const std::string id = b["backup_id"];
  ASSERT_EQ(id.size(), 32u);
  Json("backup" + c + " --key cl/coordinator.key --name m --parent " + id + " model");
  EXPECT_EQ(Json("list" + c).size(), 2u);
  EXPECT_EQ(Json("show" + c + " --backup " + id)["tags"][0], "t1");
  EXPECT_TRUE(Json("diff" + c + " " + id + " latest:m")["changed"].empty());
  EXPECT_EQ(Json("verify" + c + " --backup " + id + " model")["ok"], true);
  EXPECT_EQ(Json("status" + c).size(), 6u);
  auto rq = Json("restore request" + c + " --backup " + id + " --purpose json --out req --submit");
  const std::string rid = rq["request_id"];
  EXPECT_EQ(rq["submitted_to"], 6);
  EXPECT_EQ(Json("pending" + c + " --key cl/custodians/c1.key").size(), 1u);
  auto ap = Json("approve --yes" + c + " --key cl/custodians/c1.key --request " + rid);
  EXPECT_EQ(ap["custodian"], "c1");
  EXPECT_EQ(ap["posted_to"], 6);
  auto file = Json("approve --yes" + c + " --key cl/custodians/c4.key req --out req.c4");
  EXPECT_EQ(file["approval_file"], "req.c4");
  EXPECT_FALSE(file.contains("posted_to")) << "the file flow posts only denials";
  for (const char* k : {"c2", "c3"}) {
    Json("approve --yes" + c + " --key cl/custodians/" + k + ".key --request " + rid);
  }
  auto run = Json("restore run" + c + " --request req --dest restored");
  EXPECT_GT(run["bytes"].get<uint64_t>(), 256u * 1024);
  EXPECT_EQ(Json("audit verify" + c)["ok"], true);
  EXPECT_FALSE(Json("audit log" + c + " --request " + rid.substr(0, 8)).empty());
  Json("scrub" + c + " --backup " + id.substr(0, 8));
  EXPECT_FALSE(Json("audit log" + c + " --backup " + id.substr(0, 8)).empty());
  // Errors, too.
  auto err = Json("show" + c + " --backup ffff", 1);
  EXPECT_EQ(err["error"]["code"], "not_found");
  EXPECT_EQ(verbs_, 19);
}

}  // namespace
}  // namespace qv
