#include "configs/cluster_config.h"

#include <gtest/gtest.h>

#include "base/file_util.h"
#include "base/temp_dir.h"
#include "configs/local_cluster.h"

namespace qv {
namespace {

namespace fs = std::filesystem;

class ClusterConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = InitLocalCluster(tmp_.path() / "c", LocalClusterOptions{});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    Bytes b = *ReadFileBytes(tmp_.path() / "c/cluster.toml", 1 << 20);
    text_.assign(b.begin(), b.end());
  }
  // Parses the generated file with `from` replaced by `to`.
  Status ParseWith(const std::string& from, const std::string& to) {
    std::string t = text_;
    size_t pos = t.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    t.replace(pos, from.size(), to);
    return ClusterConfig::Parse(t, "cluster.toml").status();
  }
  ScopedTempDir tmp_{"qv-config-test"};
  std::string text_;
};

TEST_F(ClusterConfigTest, InitWritesALoadableThreeSiteCluster) {
  auto c = ClusterConfig::Load(tmp_.path() / "c/cluster.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->nodes.size(), 6u);
  EXPECT_EQ(c->k, 4u);
  EXPECT_EQ(c->m, 2u);
  EXPECT_EQ(c->t, 3u);
  EXPECT_EQ(c->quorum, 3u);
  EXPECT_EQ(c->custodians.size(), 5u);
  EXPECT_EQ(c->requesters.size(), 1u);
  EXPECT_EQ(c->nodes[2].site, "site-b");
  EXPECT_EQ(c->nodes[5].port, 7405);
  auto n = NodeConfig::Load(NodeConfigPath(tmp_.path() / "c", "node-03"));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->id, "node-03");
  auto key = SigningKey::Load(n->key_file);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ((*key)->public_key(), c->nodes[3].public_key);
  EXPECT_FALSE(InitLocalCluster(tmp_.path() / "c", LocalClusterOptions{}).ok());
}

TEST_F(ClusterConfigTest, ErrorsNameTheFileFieldAndReason) {
  struct Case {
    std::string from, to, needle;
  };
  std::vector<Case> cases = {
      {"quorum = 3", "quorum = 3\ncolour = \"red\"", "cluster.toml: cluster.colour: unknown key"},
      {"id = \"node-01\"", "id = \"node-00\"", "nodes[1].id: duplicate node id node-00"},
      {"port = 7401", "port = 7400", "nodes[1].port: duplicate address"},
      {"k = 4", "k = 5", "cluster.k: k + m = 7 but the cluster has 6 nodes"},
      {"t = 3", "t = 9", "cluster.t: 9 is outside|cluster.t: threshold 9 exceeds 6 nodes"},
      {"public_key = \"ed25519:", "public_key = \"ed25519:zz", "nodes[0].public_key"},
      {"site = \"site-a\"", "site = \"site-z\"", "nodes[0].site: unknown site site-z"},
      {"quorum = 3", "quorum = 6", "cluster.quorum: quorum 6 exceeds 5 custodians"},
      {"[cluster]", "[cluster", "cluster.toml:4:9: Error while parsing table header"},
  };
  for (const auto& c : cases) {
    Status s = ParseWith(c.from, c.to);
    EXPECT_FALSE(s.ok()) << c.from;
    bool any = false;
    size_t start = 0;
    while (start <= c.needle.size()) {
      size_t bar = c.needle.find('|', start);
      std::string alt =
          c.needle.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      any = any || s.message().find(alt) != std::string::npos;
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    EXPECT_TRUE(any) << c.needle << "\n got: " << s.message();
  }
}

// A weakened policy is refused where it is written (cluster init) and
// where it is read (every node and tool loads through Validate).
TEST_F(ClusterConfigTest, PoliciesThatLetFewerPeopleReleaseAreRefused) {
  auto c = ClusterConfig::Load(tmp_.path() / "c/cluster.toml");
  ASSERT_TRUE(c.ok());
  ClusterConfig twice = *c;
  twice.custodians[1].public_key = twice.custodians[0].public_key;
  Status s = twice.Validate("cluster.toml");
  EXPECT_NE(s.message().find("c2's key is already used by another party"), std::string::npos)
      << s.ToString();
  EXPECT_FALSE(ClusterConfig::Parse(twice.ToToml(), "cluster.toml").ok());
  ClusterConfig requester_is_custodian = *c;
  requester_is_custodian.requesters[0].public_key = c->custodians[2].public_key;
  EXPECT_FALSE(requester_is_custodian.Validate("cluster.toml").ok());
  ClusterConfig node_is_custodian = *c;
  node_is_custodian.custodians[0].public_key = c->nodes[0].public_key;
  EXPECT_FALSE(node_is_custodian.Validate("cluster.toml").ok());
  ClusterConfig zero = *c;
  zero.quorum = 0;
  EXPECT_NE(zero.Validate("cluster.toml").message().find("quorum 0"), std::string::npos);
  LocalClusterOptions o;
  o.quorum = 0;
  Status init = InitLocalCluster(tmp_.path() / "zero", o).status();
  EXPECT_NE(init.message().find("--quorum 0"), std::string::npos) << init.ToString();
  EXPECT_FALSE(fs::exists(tmp_.path() / "zero" / "cluster.toml"));
  EXPECT_TRUE(c->Validate("cluster.toml").ok());
}

TEST_F(ClusterConfigTest, NodeFileNamesMissingFiles) {
  fs::path nf = NodeConfigPath(tmp_.path() / "c", "node-00");
  fs::remove(nf.parent_path() / "master.key");
  auto n = NodeConfig::Load(nf);
  EXPECT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("node.master_key_file"), std::string::npos);
  EXPECT_EQ(NodeConfig::Load(tmp_.path() / "nope.toml").status().code(), StatusCode::kNotFound);
}

// Each timer of the node file is its own key, bounded on both sides; the
// settling clock is not the witness clock (a node witnessing daily still
// settles its backups every few seconds).
TEST_F(ClusterConfigTest, NodeTimersLoadSeparatelyAndOutOfRangeValuesAreRefused) {
  const fs::path nf = NodeConfigPath(tmp_.path() / "c", "node-00");
  auto text = ReadFileText(nf, 1 << 20);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const std::string original = *text;
  auto with = [&](const std::string& key, const std::string& value) {
    const size_t at = original.find(key + " = ");
    EXPECT_NE(at, std::string::npos) << key;
    const size_t end = original.find('\n', at);
    std::string t = original;
    t.replace(at, end - at, key + " = " + value);
    EXPECT_TRUE(WriteFileAtomic(nf, AsBytes(t), 0600).ok());
    return NodeConfig::Load(nf);
  };
  auto defaults = NodeConfig::Load(nf);
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->settle_interval_ms, 10000u);
  auto daily = with("witness_interval_ms", "86400000");
  ASSERT_TRUE(daily.ok()) << daily.status().ToString();
  EXPECT_EQ(daily->witness_interval_ms, 86400000u);
  EXPECT_EQ(daily->settle_interval_ms, 10000u);
  for (const auto& [value, ok] : std::vector<std::pair<std::string, bool>>{
           {"49", false}, {"50", true}, {"3600000", true}, {"3600001", false}, {"-1", false}}) {
    auto n = with("settle_interval_ms", value);
    EXPECT_EQ(n.ok(), ok) << value;
    if (ok && n.ok()) {
      EXPECT_EQ(std::to_string(n->settle_interval_ms), value);
    } else if (!ok) {
      EXPECT_NE(n.status().message().find("node.settle_interval_ms"), std::string::npos)
          << n.status().ToString();
    }
  }
}

// A principal whose signing key is in a token names a second key for the
// node channels; it round-trips, and may not be any other party's key.
TEST_F(ClusterConfigTest, AChannelKeyRoundTripsAndIsOneKeyOneParty) {
  auto c = *ClusterConfig::Parse(text_, "cluster.toml");
  auto fresh = std::move(SigningKey::Generate()).value();
  const std::string line =
      "id = \"c1\"\npublic_key = \"" + PublicKeyToText(c.custodians[0].public_key) + "\"\n";
  ASSERT_NE(text_.find(line), std::string::npos);
  std::string t = text_;
  t.replace(t.find(line), line.size(),
            line + "channel_key = \"" + PublicKeyToText(fresh->public_key()) + "\"\n");
  auto with = ClusterConfig::Parse(t, "cluster.toml");
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  ASSERT_TRUE(with->custodians[0].channel_key.has_value());
  EXPECT_EQ(with->custodians[0].channel(), fresh->public_key());
  EXPECT_EQ(with->custodians[1].channel(), with->custodians[1].public_key);
  auto again = ClusterConfig::Parse(with->ToToml(), "again");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->custodians[0].channel_key, with->custodians[0].channel_key);
  EXPECT_EQ(again->ToToml(), with->ToToml());
  // Another party's key (a node's, another custodian's, its own signing
  // key) as a channel key is refused.
  for (const PublicKey& taken : {c.nodes[0].public_key, c.custodians[1].public_key,
                                 c.custodians[0].public_key, c.coordinator}) {
    std::string bad = text_;
    bad.replace(bad.find(line), line.size(),
                line + "channel_key = \"" + PublicKeyToText(taken) + "\"\n");
    Status st = ClusterConfig::Parse(bad, "cluster.toml").status();
    EXPECT_NE(st.message().find("key is already used by another party"), std::string::npos)
        << st.ToString();
  }
  EXPECT_FALSE(ParseWith(line, line + "channel_key = \"ed25519:00\"\n").ok());
}

TEST(LocalClusterTest, RefusesLayoutsThatCannotSurviveASite) {
  ScopedTempDir tmp("qv-config-test");
  LocalClusterOptions o;
  o.sites = 1;
  EXPECT_FALSE(InitLocalCluster(tmp.path() / "x", o).ok());
  o = LocalClusterOptions{};
  o.quorum = 6;
  EXPECT_FALSE(InitLocalCluster(tmp.path() / "y", o).ok());
}

// Names with quotes, backslashes, newlines or control characters are
// written so the file reads back to exactly the same names, adding no key.
TEST(ConfigWriterTest, HostileNamesRoundTripWithoutInjectingKeys) {
  ScopedTempDir tmp{"qv-config-writer"};
  auto c = InitLocalCluster(tmp.path() / "c", LocalClusterOptions{});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ClusterConfig cfg = *ClusterConfig::Load(tmp.path() / "c/cluster.toml");
  const std::string hostile = "a\"\nk = 9\n[x]\\\t\x01z";
  cfg.name = hostile;
  cfg.custodians[0].id = hostile;
  auto back = ClusterConfig::Parse(cfg.ToToml(), "cluster.toml");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << cfg.ToToml();
  EXPECT_EQ(back->name, hostile);
  EXPECT_EQ(back->custodians[0].id, hostile);
  EXPECT_EQ(back->k, cfg.k);
  NodeConfig n;
  n.id = hostile;
  n.data_dir = "da\"ta";
  n.key_file = n.master_key_file = n.cluster_file = tmp.path() / "c/cluster.toml";
  n.message_timeout_ms = 1234;
  const fs::path nf = tmp.path() / "node.toml";
  ASSERT_TRUE(WriteFileAtomic(nf, AsBytes(n.ToToml()), 0600).ok());
  auto loaded = NodeConfig::Load(nf);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->id, hostile);
  EXPECT_EQ(loaded->message_timeout_ms, 1234u);
  EXPECT_EQ(loaded->data_dir.filename(), "da\"ta");
}

}  // namespace
}  // namespace qv
