#include "sim/drill.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/file_util.h"
#include "base/text.h"
#include "sim/live_cluster.h"
#include "sim/simulation.h"

namespace qv::sim {

namespace fs = std::filesystem;

namespace {

// One [[step]] of a drill file, read strictly.
// Integer fields, by action: every one is bounded.
struct IntField {
  std::string_view action, key;
  int64_t lo, hi;
};
constexpr IntField kInts[] = {
    {"backup", "size", 0, 64ll << 20},
    {"request", "ttl", 1, 30 * 86400},
    {"slow-site", "latency_ms", 0, 600000},
    {"slow-site", "mbps", 1, 400000},
    {"link", "latency_ms", 0, 600000},
    {"link", "mbps", 1, 400000},
    {"skew", "seconds", -365 * 86400, 365 * 86400},
    {"wait", "seconds", 0, 365 * 86400},
    {"fault", "after", 0, 1 << 20},
    {"tick", "rounds", 1, 100},
    {"witness", "rounds", 1, 100},
    {"listed", "nodes", 0, 1000},
    {"topology", "sites", 1, 16},
    {"topology", "nodes_per_site", 1, 16},
    {"topology", "custodians", 0, 32},
    {"topology", "quorum", 0, 32},
    {"topology", "wan_latency_ms", 0, 10000},
    {"topology", "wan_mbps", 1, 400000},
};

// Fields that take one of a few words.
const std::map<std::pair<std::string, std::string>, std::set<std::string>>& Enums() {
  static const std::map<std::pair<std::string, std::string>, std::set<std::string>> e = {
      {{"fault", "at"},
       {"begin", "unit-write", "prepare-files", "prepare-rename", "prepare-row", "commit",
        "spend"}},
      {{"fault", "error"}, {"eio", "enospc"}},
      {{"misconfigure", "policy"},
       {"quorum-zero", "quorum-above-custodians", "duplicate-custodian-key"}},
  };
  return e;
}

class Step {
 public:
  Step(const toml::table* t, std::string where, std::string action = "")
      : t_(t), where_(std::move(where)), action_(std::move(action)) {}
  // An integer field of this step's action, in its range.
  Result<int64_t> Int(std::string_view key, std::optional<int64_t> fallback = std::nullopt) const {
    for (const auto& f : kInts) {
      if (f.action == action_ && f.key == key) return Int(key, f.lo, f.hi, fallback);
    }
    return Internal("no range for " + action_ + "." + std::string(key));
  }
  // Every bounded, enumerated and boolean field present has a good value:
  // checked for all steps before any runs.
  Status CheckValues() const {
    for (const auto& f : kInts) {
      if (f.action == action_ && (*t_)[f.key]) QV_RETURN_IF_ERROR(Int(f.key).status());
    }
    for (const auto& [field, words] : Enums()) {
      if (field.first != action_ || !(*t_)[field.second]) continue;
      QV_ASSIGN_OR_RETURN(std::string v, Str(field.second));
      if (!words.count(v)) {
        std::string all;
        for (const auto& w : words) all += (all.empty() ? "" : ", ") + w;
        return InvalidArgument(where_ + "." + field.second + ": '" + v + "' is not one of " + all);
      }
    }
    for (const char* b : {"deny", "prove", "crash"}) {
      if ((*t_)[b] && !(*t_)[b].is_boolean()) {
        return InvalidArgument(where_ + "." + b + ": not true or false");
      }
    }
    return Status::Ok();
  }
  const std::string& where() const { return where_; }
  Result<std::string> Str(std::string_view key, std::string fallback = "\x01") const {
    auto v = (*t_)[key].value<std::string>();
    if (v) return *v;
    if ((*t_)[key]) return InvalidArgument(where_ + "." + std::string(key) + ": not a string");
    if (fallback == "\x01") return InvalidArgument(where_ + ": missing " + std::string(key));
    return fallback;
  }
  Result<int64_t> Int(std::string_view key, int64_t lo, int64_t hi,
                      std::optional<int64_t> fallback) const {
    auto v = (*t_)[key].value<int64_t>();
    if (!v) {
      if ((*t_)[key]) return InvalidArgument(where_ + "." + std::string(key) + ": not an integer");
      if (!fallback) return InvalidArgument(where_ + ": missing " + std::string(key));
      return *fallback;
    }
    if (*v < lo || *v > hi) {
      return InvalidArgument(where_ + "." + std::string(key) + ": " + std::to_string(*v) +
                             " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return *v;
  }
  bool Bool(std::string_view key, bool fallback) const {
    return (*t_)[key].value<bool>().value_or(fallback);
  }
  // A string or an array of strings.
  Result<std::vector<std::string>> List(std::string_view key) const {
    if (auto s = (*t_)[key].value<std::string>()) return std::vector<std::string>{*s};
    const toml::array* a = (*t_)[key].as_array();
    if (a == nullptr) return InvalidArgument(where_ + ": missing " + std::string(key));
    std::vector<std::string> out;
    for (const auto& e : *a) {
      auto s = e.value<std::string>();
      if (!s) return InvalidArgument(where_ + "." + std::string(key) + ": not a string list");
      out.push_back(*s);
    }
    return out;
  }
  Status OnlyKeys(const std::set<std::string>& allowed) const {
    for (const auto& [k, v] : *t_) {
      const std::string key(k.str());
      if (!allowed.count(key) && key != "do" && key != "expect" && key != "reason" &&
          key != "evidence") {
        return InvalidArgument(where_ + ": unknown key '" + key + "'");
      }
    }
    return Status::Ok();
  }

 private:
  const toml::table* t_;
  std::string where_;
  std::string action_;
};

const std::map<std::string, std::set<std::string>>& Actions() {
  static const std::map<std::string, std::set<std::string>> a = {
      {"backup", {"label", "size"}},
      {"request", {"label", "backup", "by", "ttl"}},
      {"approve", {"request", "by", "signer", "deny"}},
      {"restore", {"request", "as", "approvals_of", "prove", "problem"}},
      {"crash", {"node"}},
      {"restart", {"node"}},
      {"destroy", {"node"}},
      {"lose-site", {"site"}},
      {"partition", {"a", "b"}},
      {"heal", {}},
      {"slow-site", {"site", "latency_ms", "mbps"}},
      {"link", {"a", "b", "latency_ms", "mbps"}},
      {"skew", {"node", "seconds"}},
      {"wait", {"seconds"}},
      {"fault", {"node", "at", "error", "crash", "after"}},
      {"clear-faults", {}},
      {"tick", {"rounds"}},
      {"witness", {"rounds"}},
      {"listed", {"backup", "nodes"}},
      {"audit-verify", {}},
      {"steal", {"node"}},
      {"combine-stolen", {"backup"}},
      {"rewrite-audit", {"node"}},
      {"replace-manifest", {"node", "backup"}},
      {"corrupt-fragment", {"node", "backup"}},
      {"tear-fragment", {"node", "backup"}},
      {"liar", {"node"}},
      {"misconfigure", {"policy"}},
  };
  return a;
}

// What a live cluster of real processes can be made to do.
const std::set<std::string>& LiveActions() {
  static const std::set<std::string> a = {
      "backup",  "request",   "approve",          "restore",       "crash",  "restart",
      "destroy", "lose-site", "corrupt-fragment", "tear-fragment", "listed", "audit-verify"};
  return a;
}

bool Contains(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// What a step did, for comparing with what it had to do.
struct Observed {
  std::string kind;  // ok, failed, refused, restored, detected, clean, count:N
  std::string detail;
  std::vector<std::string> lines;  // where `reason` may be found
  bool written = false;            // a failed restore left something behind
};

// A status as an outcome: a refusal by policy or a failure of means.
Observed FromStatus(const Status& s) {
  if (s.ok()) return {"ok", "", {}, false};
  const bool refused =
      s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kUnauthenticated ||
      s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kCorruption;
  return {refused ? "refused" : "failed", s.message(), {s.message()}, false};
}

class Runner {
 public:
  // `sim` is null in a live cluster: actions only the simulator can do are
  // then refused (RunDrill skips such drills before they start).
  Runner(DrillWorld* world, Simulation* sim, DrillReport* report)
      : world_(world), sim_(sim), report_(report) {}

  // Runs one step; a Status error is a drill that could not run (bad file).
  Status Run(const Step& st, const std::string& action, StepReport* out) {
    QV_RETURN_IF_ERROR(st.OnlyKeys(Actions().at(action)));
    Observed o;
    QV_ASSIGN_OR_RETURN(o, Do(st, action, out));
    for (auto& e : world_->NewEvidence()) out->evidence.push_back(std::move(e));
    QV_ASSIGN_OR_RETURN(std::string expect, st.Str("expect", ""));
    QV_ASSIGN_OR_RETURN(std::string reason, st.Str("reason", ""));
    QV_ASSIGN_OR_RETURN(std::string evidence, st.Str("evidence", ""));
    out->observed = world_->Relative(o.kind + (o.detail.empty() ? "" : ": " + Printable(o.detail)));
    if (out->observed.size() > 300) out->observed = out->observed.substr(0, 297) + "...";
    if (expect.empty()) {
      // A setup step: it must simply work.
      out->pass = o.kind == "ok" || o.kind == "restored" || o.kind == "clean";
    } else {
      out->expected = expect + (reason.empty() ? "" : ": \"" + reason + "\"");
      out->pass = o.kind == expect && (reason.empty() || Contains(o.lines, reason)) && !o.written;
      if (o.written) out->observed += " (and something was written at the destination)";
    }
    if (!evidence.empty()) {
      out->expected +=
          (out->expected.empty() ? "" : "; ") + std::string("audit: \"") + evidence + "\"";
      if (!Contains(out->evidence, evidence)) {
        out->pass = false;
        out->observed += " (no audit entry says \"" + evidence + "\")";
      }
    }
    return Status::Ok();
  }

 private:
  Result<Observed> Do(const Step& st, const std::string& a, StepReport* out) {
    if (sim_ == nullptr && !LiveActions().count(a)) {
      return FailedPrecondition(st.where() + ": '" + a + "' needs the simulator");
    }
    auto named = [&](const std::string& what) { out->action = a + " " + what; };
    if (a == "backup") {
      QV_ASSIGN_OR_RETURN(std::string label, st.Str("label"));
      QV_ASSIGN_OR_RETURN(int64_t size, st.Int("size", 200000));
      named(label + " (" + std::to_string(size) + " bytes)");
      std::string detail;
      auto id = world_->Backup(label, static_cast<uint64_t>(size), &detail);
      if (id.ok()) ++report_->backups;
      Observed o = FromStatus(id.status());
      if (o.kind != "ok") o.kind = "failed";  // a backup is all or nothing: it fails or commits
      return o;
    }
    if (a == "request") {
      QV_ASSIGN_OR_RETURN(std::string label, st.Str("label"));
      QV_ASSIGN_OR_RETURN(std::string backup, st.Str("backup"));
      QV_ASSIGN_OR_RETURN(std::string by, st.Str("by", "operator"));
      QV_ASSIGN_OR_RETURN(int64_t ttl, st.Int("ttl", 3600));
      named(label + " for " + backup + " by " + by);
      return FromStatus(world_->Request(label, backup, by, ttl));
    }
    if (a == "approve") {
      QV_ASSIGN_OR_RETURN(std::string request, st.Str("request"));
      QV_ASSIGN_OR_RETURN(auto by, st.List("by"));
      QV_ASSIGN_OR_RETURN(std::string signer, st.Str("signer", ""));
      const bool deny = st.Bool("deny", false);
      named(request + (deny ? " denied by " : " by ") + Join(by, ",") +
            (signer.empty() ? "" : " signed by " + signer));
      for (const auto& c : by) {
        QV_RETURN_IF_ERROR(world_->Approve(request, c, signer.empty() ? c : signer, !deny));
      }
      return Observed{"ok", "", {}, false};
    }
    if (a == "restore") {
      QV_ASSIGN_OR_RETURN(std::string request, st.Str("request"));
      QV_ASSIGN_OR_RETURN(std::string as, st.Str("as", "operator"));
      QV_ASSIGN_OR_RETURN(std::string of, st.Str("approvals_of", ""));
      QV_ASSIGN_OR_RETURN(std::string problem, st.Str("problem", ""));
      const bool prove = st.Bool("prove", true);
      named(request + " as " + as + (of.empty() ? "" : " with the approvals of " + of) +
            (prove ? "" : " without the one-time key"));
      auto r = world_->Restore(request, as, of, prove);
      Observed o;
      o.lines = r.problems;
      o.lines.push_back(r.detail);
      if (r.restored) {
        o.kind = r.identical ? "restored" : "failed";
        o.detail = r.identical ? "byte-identical in " + std::to_string(r.ms) + " ms"
                               : "the restored bytes differ from the backup";
        if (!problem.empty()) {
          if (!Contains(r.problems, problem)) {
            o.kind = "restored-without-naming-the-problem";
          }
          o.detail += "; routed around: " + Join(r.problems, "; ");
        }
        if (r.identical) report_->rto_ms = r.ms;
        return o;
      }
      o.detail = r.detail;
      o.written = r.anything_written;
      const bool refused = r.detail.find("permission denied") != std::string::npos ||
                           r.detail.find("released (need") != std::string::npos ||
                           r.detail.find("refus") != std::string::npos;
      o.kind = refused ? "refused" : "failed";
      return o;
    }
    if (a == "crash" || a == "restart" || a == "destroy" || a == "steal" || a == "liar" ||
        a == "rewrite-audit") {
      QV_ASSIGN_OR_RETURN(std::string node, st.Str("node"));
      named(node);
      if (a == "crash") return FromStatus(world_->Crash(node));
      if (a == "restart") return FromStatus(world_->Restart(node));
      if (a == "destroy") return FromStatus(world_->Destroy(node));
      if (a == "steal") return FromStatus(sim_->Steal(node));
      if (a == "rewrite-audit") return FromStatus(sim_->RewriteAudit(node));
      sim_->MakeLiar(node);
      return Observed{"ok", "", {}, false};
    }
    if (a == "lose-site") {
      QV_ASSIGN_OR_RETURN(std::string site, st.Str("site"));
      named(site);
      auto nodes = world_->NodesAt(site);
      if (nodes.empty()) return InvalidArgument(st.where() + ": no site " + site);
      world_->Note("site " + site + " lost");
      for (const auto& n : nodes) QV_RETURN_IF_ERROR(world_->Destroy(n));
      return Observed{"ok", "", {}, false};
    }
    if (a == "partition") {
      QV_ASSIGN_OR_RETURN(std::string x, st.Str("a"));
      QV_ASSIGN_OR_RETURN(std::string y, st.Str("b"));
      named(x + " | " + y);
      sim_->net().Cut(x, y);
      world_->Note("partition between " + x + " and " + y);
      return Observed{"ok", "", {}, false};
    }
    if (a == "heal") {
      named("");
      sim_->net().HealAll();
      world_->Note("network healed");
      return Observed{"ok", "", {}, false};
    }
    if (a == "slow-site") {
      QV_ASSIGN_OR_RETURN(std::string site, st.Str("site"));
      QV_ASSIGN_OR_RETURN(int64_t lat, st.Int("latency_ms"));
      QV_ASSIGN_OR_RETURN(int64_t mbps, st.Int("mbps", 100));
      named(site + " (" + std::to_string(lat) + " ms, " + std::to_string(mbps) + " Mb/s)");
      sim_->net().SetSiteLink(site, {lat, static_cast<double>(mbps) * 125.0, 0});
      world_->Note("site " + site + " slowed to " + std::to_string(lat) + " ms, " +
                   std::to_string(mbps) + " Mb/s");
      return Observed{"ok", "", {}, false};
    }
    if (a == "link") {
      QV_ASSIGN_OR_RETURN(std::string x, st.Str("a"));
      QV_ASSIGN_OR_RETURN(std::string y, st.Str("b"));
      QV_ASSIGN_OR_RETURN(int64_t lat, st.Int("latency_ms"));
      QV_ASSIGN_OR_RETURN(int64_t mbps, st.Int("mbps", 100));
      named(x + " - " + y + " (" + std::to_string(lat) + " ms, " + std::to_string(mbps) + " Mb/s)");
      sim_->net().SetPairLink(x, y, {lat, static_cast<double>(mbps) * 125.0, 0});
      world_->Note("link " + x + " - " + y + " set to " + std::to_string(lat) + " ms, " +
                   std::to_string(mbps) + " Mb/s");
      return Observed{"ok", "", {}, false};
    }
    if (a == "skew") {
      QV_ASSIGN_OR_RETURN(std::string node, st.Str("node"));
      QV_ASSIGN_OR_RETURN(int64_t s, st.Int("seconds"));
      named(node + " by " + std::to_string(s) + " s");
      if (node == "all") {
        for (const auto& n : sim_->cluster().nodes) sim_->SetSkew(n.id, s);
      } else {
        sim_->SetSkew(node, s);
      }
      return Observed{"ok", "", {}, false};
    }
    if (a == "wait") {
      QV_ASSIGN_OR_RETURN(int64_t s, st.Int("seconds"));
      named(std::to_string(s) + " s");
      sim_->clock().AdvanceMs(s * 1000);
      world_->Note("waited " + std::to_string(s) + " s");
      return Observed{"ok", "", {}, false};
    }
    if (a == "fault") {
      QV_ASSIGN_OR_RETURN(std::string node, st.Str("node"));
      QV_ASSIGN_OR_RETURN(std::string at, st.Str("at"));
      QV_ASSIGN_OR_RETURN(std::string error, st.Str("error", "eio"));
      QV_ASSIGN_OR_RETURN(int64_t after, st.Int("after", 0));
      const bool crash = st.Bool("crash", false);
      Status err = error == "enospc" ? IoError("No space left on device (simulated ENOSPC)")
                                     : IoError("Input/output error (simulated EIO)");
      named(node + " at " + at + (crash ? " (crash)" : " (" + error + ")"));
      sim_->AddFault(node, at, err, crash, static_cast<uint32_t>(after));
      world_->Note("fault armed on " + node + " at " + at + (crash ? ": crash" : ": " + error));
      return Observed{"ok", "", {}, false};
    }
    if (a == "clear-faults") {
      named("");
      sim_->ClearFaults();
      return Observed{"ok", "", {}, false};
    }
    if (a == "tick" || a == "witness") {
      QV_ASSIGN_OR_RETURN(int64_t rounds, st.Int("rounds", 1));
      named(std::to_string(rounds) + " round(s)");
      for (int64_t i = 0; i < rounds; ++i) {
        sim_->clock().AdvanceMs(10000);  // the daemon's default interval
        if (a == "tick") {
          sim_->TickAll();
        } else {
          sim_->WitnessAll();
        }
      }
      // What the rounds found is in the nodes' audit logs.
      out->evidence = world_->NewEvidence();
      Observed o{"ok", "", out->evidence, false};
      for (const auto& e : out->evidence) {
        if (e.find(" alert") != std::string::npos) {
          o.kind = "detected";
          o.detail = e;
          break;
        }
      }
      return o;
    }
    if (a == "listed") {
      QV_ASSIGN_OR_RETURN(std::string backup, st.Str("backup"));
      QV_ASSIGN_OR_RETURN(int64_t want, st.Int("nodes"));
      named(backup + " on " + std::to_string(want) + " node(s)");
      const auto* b = world_->Backed(backup);
      size_t n = 0;
      auto listed = world_->Listed();
      if (b != nullptr && listed.count(b->id)) n = listed[b->id];
      if (b == nullptr && want == 0) {
        // Never committed: nothing must be listed at all.
        for (const auto& [id, count] : listed) n += count;
      }
      Observed o{"ok", std::to_string(n) + " node(s) list it", {}, false};
      if (n != static_cast<size_t>(want)) {
        o.kind = "failed";
        o.detail = std::to_string(n) + " node(s) list it, not " + std::to_string(want);
      }
      return o;
    }
    if (a == "audit-verify") {
      named("");
      AuditReport r = world_->AuditVerify();
      Observed o;
      for (const auto& n : r.nodes) {
        for (const auto& p : n.problems) o.lines.push_back(n.node + ": " + p);
      }
      for (const auto& p : r.cross_problems) o.lines.push_back(p);
      o.kind = r.ok() ? "clean" : "detected";
      o.detail = r.ok() ? "every chain, checkpoint and witness record agrees" : Join(o.lines, "; ");
      return o;
    }
    if (a == "combine-stolen") {
      QV_ASSIGN_OR_RETURN(std::string backup, st.Str("backup"));
      named(backup);
      Status s = sim_->CombineStolen(backup);
      if (s.ok()) return Observed{"ok", "THE DATA KEY WAS REBUILT FROM STOLEN DISKS", {}, false};
      return FromStatus(s);
    }
    if (a == "replace-manifest" || a == "corrupt-fragment" || a == "tear-fragment") {
      QV_ASSIGN_OR_RETURN(std::string node, st.Str("node"));
      QV_ASSIGN_OR_RETURN(std::string backup, st.Str("backup"));
      named(node + " " + backup);
      if (a == "replace-manifest") return FromStatus(sim_->ReplaceManifest(node, backup));
      if (a == "tear-fragment") return FromStatus(world_->TearFragment(node, backup));
      return FromStatus(world_->CorruptFragment(node, backup));
    }
    if (a == "misconfigure") {
      QV_ASSIGN_OR_RETURN(std::string policy, st.Str("policy"));
      named(policy);
      Observed o;
      Status init = sim_->InitWith(policy);
      o.lines.push_back(init.message());
      std::vector<std::string> refusals;
      QV_RETURN_IF_ERROR(sim_->Misconfigure(policy, &refusals));
      for (const auto& r : refusals) o.lines.push_back(r);
      const size_t running = world_->cluster().nodes.size() - refusals.size();
      QV_RETURN_IF_ERROR(sim_->RestoreClusterFile());
      if (!init.ok() && running == 0) {
        o.kind = "refused";
        o.detail = "cluster init: " + init.message() + "; all " + std::to_string(refusals.size()) +
                   " nodes refused to start";
      } else {
        o.kind = "accepted";
        o.detail = (init.ok() ? std::string("cluster init accepted it; ") : "") +
                   std::to_string(running) + " node(s) started with it";
      }
      return o;
    }
    return InvalidArgument(st.where() + ": unknown action '" + a + "'");
  }

  DrillWorld* world_;
  Simulation* sim_;
  DrillReport* report_;
};

Result<Topology> ReadTopology(const toml::table& root, const std::string& file) {
  Topology t;
  const toml::table* tt = root["topology"].as_table();
  if (tt == nullptr) return t;
  Step s(tt, file + ": [topology]", "topology");
  QV_RETURN_IF_ERROR(s.OnlyKeys(
      {"sites", "nodes_per_site", "custodians", "quorum", "wan_latency_ms", "wan_mbps", "loss"}));
  QV_ASSIGN_OR_RETURN(int64_t sites, s.Int("sites", 3));
  QV_ASSIGN_OR_RETURN(int64_t per, s.Int("nodes_per_site", 2));
  QV_ASSIGN_OR_RETURN(int64_t cust, s.Int("custodians", 5));
  QV_ASSIGN_OR_RETURN(int64_t quorum, s.Int("quorum", 3));
  QV_ASSIGN_OR_RETURN(int64_t lat, s.Int("wan_latency_ms", 20));
  QV_ASSIGN_OR_RETURN(int64_t mbps, s.Int("wan_mbps", 100));
  const double loss = (*tt)["loss"].value<double>().value_or(0.0);
  if (loss < 0 || loss > 0.5) return InvalidArgument(file + ": topology.loss must be 0..0.5");
  t.sites = static_cast<uint32_t>(sites);
  t.nodes_per_site = static_cast<uint32_t>(per);
  t.custodians = static_cast<uint32_t>(cust);
  t.quorum = static_cast<uint32_t>(quorum);
  t.wan = {lat, static_cast<double>(mbps) * 125.0, loss};
  return t;
}

}  // namespace

Result<DrillReport> RunDrill(const fs::path& file, const DrillOptions& options) {
  QV_ASSIGN_OR_RETURN(std::string text, ReadFileText(file, 1 << 20));
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    return InvalidArgument(file.string() + ": " + std::string(e.description()));
  }
  DrillReport report;
  report.file = file.filename().string();
  const toml::table* d = root["drill"].as_table();
  if (d == nullptr) return InvalidArgument(file.string() + ": missing [drill] table");
  Step head(d, file.string() + ": [drill]");
  QV_RETURN_IF_ERROR(head.OnlyKeys({"name", "rand_category", "kind", "summary"}));
  QV_ASSIGN_OR_RETURN(report.name, head.Str("name"));
  QV_ASSIGN_OR_RETURN(report.rand_category, head.Str("rand_category"));
  QV_ASSIGN_OR_RETURN(report.kind, head.Str("kind"));
  QV_ASSIGN_OR_RETURN(report.summary, head.Str("summary", ""));
  if (report.kind != "disaster" && report.kind != "abuse") {
    return InvalidArgument(file.string() + ": drill.kind must be \"disaster\" or \"abuse\"");
  }
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    if (key != "drill" && key != "topology" && key != "step") {
      return InvalidArgument(file.string() + ": unknown table '" + key + "'");
    }
  }
  QV_ASSIGN_OR_RETURN(Topology topo, ReadTopology(root, file.string()));
  const toml::array* steps = root["step"].as_array();
  if (steps == nullptr || steps->empty()) {
    return InvalidArgument(file.string() + ": no [[step]]");
  }
  if (steps->size() > 1000) return InvalidArgument(file.string() + ": more than 1000 steps");
  // Every step is read before anything runs: a typo fails the file, not
  // the drill halfway.
  std::vector<std::pair<Step, std::string>> plan;
  for (size_t i = 0; i < steps->size(); ++i) {
    const toml::table* t = (*steps)[i].as_table();
    const std::string where = file.string() + ": step " + std::to_string(i + 1);
    if (t == nullptr) return InvalidArgument(where + ": not a table");
    QV_ASSIGN_OR_RETURN(std::string action, Step(t, where).Str("do"));
    if (!Actions().count(action)) {
      return InvalidArgument(where + ": unknown action '" + action + "'");
    }
    Step st(t, where, action);
    QV_RETURN_IF_ERROR(st.OnlyKeys(Actions().at(action)));
    QV_RETURN_IF_ERROR(st.CheckValues());
    QV_ASSIGN_OR_RETURN(std::string expect, st.Str("expect", ""));
    static const std::set<std::string> outcomes = {"",         "ok",       "failed", "refused",
                                                   "restored", "detected", "clean"};
    if (!outcomes.count(expect)) {
      return InvalidArgument(where +
                             ": expect must be ok, failed, refused, restored, detected "
                             "or clean, not '" +
                             expect + "'");
    }
    plan.emplace_back(st, action);
  }

  std::unique_ptr<Simulation> sim;
  std::unique_ptr<LiveCluster> live;
  DrillWorld* world = nullptr;
  std::error_code ec;
  if (!options.live_cluster.empty()) {
    std::set<std::string> needs;
    for (const auto& [st, action] : plan) {
      if (!LiveActions().count(action)) needs.insert(action);
    }
    if (!needs.empty()) {
      std::string why;
      for (const auto& n : needs) why += (why.empty() ? "" : ", ") + n;
      report.skipped = true;
      report.failure = "needs the simulator (" + why + ")";
      return report;
    }
    const fs::path work = options.work_dir / file.stem();
    fs::remove_all(work, ec);
    fs::create_directories(work, ec);
    auto opened = LiveCluster::Open(options.live_cluster, options.qv_binary, work);
    if (!opened.ok()) return opened.status();  // the cluster, not the drill
    live = std::move(opened).value();
    world = live.get();
    report.live = true;
  } else {
    SimOptions so;
    so.seed = options.seed;
    so.dir = options.work_dir / file.stem();
    so.test_skip_quorum_check = options.test_skip_quorum_check;
    fs::remove_all(so.dir, ec);
    auto made = Simulation::New(topo, so);
    if (!made.ok()) {
      report.failure = "the simulation could not start: " + made.status().message();
      return report;
    }
    sim = std::move(made).value();
    world = sim.get();
  }
  Runner runner(world, sim.get(), &report);
  report.pass = true;
  for (auto& [st, action] : plan) {
    StepReport sr;
    Status s = runner.Run(st, action, &sr);
    if (!s.ok()) {
      sr.pass = false;
      sr.observed = "could not run: " + s.message();
    }
    if (!sr.pass && report.pass) {
      report.pass = false;
      report.failure = sr.action + ": expected " +
                       (sr.expected.empty() ? std::string("it to work") : sr.expected) +
                       ", observed " + sr.observed;
    }
    report.steps.push_back(std::move(sr));
  }
  // Committed backups that too few surviving nodes still hold.
  auto listed = world->Listed();
  const size_t need = std::max(world->cluster().k, world->cluster().t);
  std::set<std::string> labels;
  for (const auto& s : report.steps) {
    if (s.action.rfind("backup ", 0) == 0)
      labels.insert(s.action.substr(7, s.action.find(' ', 7) - 7));
  }
  for (const auto& label : labels) {
    const auto* b = world->Backed(label);
    if (b == nullptr) continue;
    const size_t held = listed.count(b->id) ? listed[b->id] : 0;
    if (held < need) report.lost.push_back(label);
  }
  if (sim) {
    report.timeline = sim->events();
    report.net_calls = sim->net().calls();
    report.net_bytes = sim->net().bytes();
    char trace[17];
    std::snprintf(trace, sizeof trace, "%016" PRIx64, sim->net().trace());
    report.trace = trace;
  } else {
    report.timeline = live->events();
  }
  return report;
}

const char* Verdict(const DrillReport& r) { return r.skipped ? "SKIP" : r.pass ? "PASS" : "FAIL"; }

std::vector<fs::path> ShippedDrills(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "configs" / "drills", ec)) {
    if (e.path().extension() == ".toml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string DrillTable(const std::vector<DrillReport>& reports) {
  std::string out;
  size_t skipped = 0;
  char line[512];
  std::snprintf(line, sizeof line, "%-34s %-8s %-6s %s\n", "DRILL", "KIND", "RESULT",
                "EXPECTED / OBSERVED / EVIDENCE");
  out += line;
  size_t passed = 0;
  for (const auto& r : reports) {
    passed += r.pass;
    skipped += r.skipped;
    std::snprintf(line, sizeof line, "%-34s %-8s %-6s %s\n", r.name.c_str(), r.kind.c_str(),
                  Verdict(r), Printable(r.rand_category).c_str());
    out += line;
    if (r.skipped) {
      out += "    skipped: " + r.failure + "\n";
      continue;
    }
    for (const auto& s : r.steps) {
      if (s.expected.empty() && s.pass) continue;
      out += "    " + std::string(s.pass ? "ok   " : "FAIL ") + s.action + "\n";
      out += "         expected " + (s.expected.empty() ? "it to work" : s.expected) + "\n";
      out += "         observed " + s.observed + "\n";
      for (size_t i = 0; i < s.evidence.size() && i < 3; ++i) {
        out += "         evidence " + s.evidence[i] + "\n";
      }
      if (s.evidence.size() > 3) {
        out += "         evidence (" + std::to_string(s.evidence.size() - 3) + " more)\n";
      }
    }
    if (r.kind == "disaster") {
      out += "    RTO " +
             (r.rto_ms >= 0
                  ? std::to_string(r.rto_ms) + (r.live ? " ms (measured)" : " ms (simulated)")
                  : "none") +
             ", RPO " + std::to_string(r.lost.size()) + " of " + std::to_string(r.backups) +
             " committed backup(s) lost" + (r.lost.empty() ? "" : ": " + Join(r.lost, ", ")) + "\n";
    }
    if (!r.pass) out += "    why: " + r.failure + "\n";
  }
  out += std::to_string(passed) + " of " + std::to_string(reports.size() - skipped) +
         " drills passed" +
         (skipped ? ", " + std::to_string(skipped) + " skipped (they need the simulator)" : "") +
         "\n";
  return out;
}

std::string DrillJson(const std::vector<DrillReport>& reports, uint64_t seed) {
  nlohmann::ordered_json j;
  j["seed"] = seed;
  j["drills"] = nlohmann::ordered_json::array();
  for (const auto& r : reports) {
    nlohmann::ordered_json d;
    d["file"] = r.file;
    d["name"] = r.name;
    d["rand_category"] = r.rand_category;
    d["kind"] = r.kind;
    d["result"] = Verdict(r);
    d["failure"] = r.failure;
    d["rto_ms"] = r.rto_ms;
    d["live"] = r.live;
    d["backups_committed"] = r.backups;
    d["backups_lost"] = r.lost;
    d["net_calls"] = r.net_calls;
    d["net_bytes"] = r.net_bytes;
    d["trace"] = r.trace;
    d["steps"] = nlohmann::ordered_json::array();
    for (const auto& s : r.steps) {
      d["steps"].push_back({{"action", s.action},
                            {"expected", s.expected},
                            {"observed", s.observed},
                            {"result", s.pass ? "PASS" : "FAIL"},
                            {"evidence", s.evidence}});
    }
    d["timeline"] = r.timeline;
    j["drills"].push_back(std::move(d));
  }
  // Invalid UTF-8 (from a hostile name) is replaced, never thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string DrillMarkdown(const std::vector<DrillReport>& reports, uint64_t seed) {
  auto cell = [](std::string s) {
    s = Printable(s);
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  size_t passed = 0;
  for (const auto& r : reports) passed += r.pass;
  std::string out = "# quorumvault drill report\n\n";
  out += "Seed " + std::to_string(seed) +
         ": the same seed reproduces this run exactly (`qv drill "
         "run --all --seed " +
         std::to_string(seed) + "`). " + std::to_string(passed) + " of " +
         std::to_string(reports.size()) +
         " drills passed. Every drill ran the real node and "
         "coordinator code on a simulated network, clock and disk.\n\n";
  out += "| Drill | RAND category | Kind | Result | RTO (simulated) | Backups lost |\n";
  out += "|---|---|---|---|---|---|\n";
  for (const auto& r : reports) {
    out +=
        "| " + cell(r.name) + " | " + cell(r.rand_category) + " | " + r.kind + " | " +
        (r.pass || r.skipped ? std::string(Verdict(r)) : std::string("**FAIL**")) + " | " +
        (r.rto_ms >= 0 ? std::to_string(r.rto_ms) + " ms" : "-") + " | " +
        (r.kind == "disaster" ? std::to_string(r.lost.size()) + " of " + std::to_string(r.backups)
                              : std::string("-")) +
        " |\n";
  }
  for (const auto& r : reports) {
    out += "\n## " + cell(r.name) + "\n\n" + cell(r.summary) + "\n\n";
    if (!r.pass) out += "**FAILED:** " + cell(r.failure) + "\n\n";
    out += "| Step | Expected | Observed | Result |\n|---|---|---|---|\n";
    for (const auto& s : r.steps) {
      out += "| " + cell(s.action) + " | " + cell(s.expected.empty() ? "(setup)" : s.expected) +
             " | " + cell(s.observed) + " | " + (s.pass ? "PASS" : "**FAIL**") + " |\n";
    }
    std::vector<std::string> ev;
    for (const auto& s : r.steps) ev.insert(ev.end(), s.evidence.begin(), s.evidence.end());
    if (!ev.empty()) {
      out += "\nEvidence (audit entries the nodes wrote):\n\n";
      for (const auto& e : ev) out += "- `" + Printable(e) + "`\n";
    }
    if (!r.lost.empty()) out += "\nUnrecoverable: " + Join(r.lost, ", ") + "\n";
  }
  return out;
}

}  // namespace qv::sim
