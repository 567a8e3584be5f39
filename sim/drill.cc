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
#include "sim/drill_step.h"
#include "sim/live_cluster.h"
#include "sim/simulation.h"

namespace qv::sim {

namespace fs = std::filesystem;

namespace {

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
      QV_ASSIGN_OR_RETURN(std::string op, st.Str("operation", "restore"));
      if (op == "repair") {
        // The plan a scrub gives, as qv repair request makes it.
        auto plan = world_->PlanRepairOf(backup);
        if (!plan.ok()) return FromStatus(plan.status());
        const std::string text = FormatRepairPlan(*plan);
        named(label + " to repair " + backup + " by " + by + " (" + text + ")");
        return FromStatus(world_->Request(label, backup, by, ttl, "repair", text));
      }
      named(label + " for " + backup + " by " + by);
      return FromStatus(world_->Request(label, backup, by, ttl));
    }
    if (a == "scrub") {
      QV_ASSIGN_OR_RETURN(std::string backup, st.Str("backup"));
      QV_ASSIGN_OR_RETURN(std::string want, st.Str("state"));
      named(backup + " (expect " + want + ")");
      auto h = world_->Scrub(backup, 1.0);
      if (!h.ok()) return FromStatus(h.status());
      std::string detail = h->state + ": " + std::to_string(h->good_fragments) +
                           " good fragments, " + std::to_string(h->good_shares) + " good shares";
      for (const auto& f : h->fragments) {
        if (!f.problems.empty()) detail += "; " + f.node + ": " + f.problems[0];
      }
      return Observed{h->state == want ? "ok" : "failed", detail, {detail}, false};
    }
    if (a == "repair") {
      QV_ASSIGN_OR_RETURN(std::string request, st.Str("request"));
      named(request);
      auto r = world_->Repair(request);
      if (!r.ok()) return FromStatus(r.status());
      return Observed{"ok",
                      "revision " + std::to_string(r->revision) + ", " +
                          std::to_string(r->shares_rebuilt) + " fragment(s) and share(s) rebuilt",
                      {},
                      false};
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
      // Refused: the nodes judged the certificate and said no. Failed: it
      // could not be judged (too few nodes, no valid manifest, no session).
      o.kind = r.code == StatusCode::kPermissionDenied || r.code == StatusCode::kUnauthenticated
                   ? "refused"
                   : "failed";
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
    if (a == "replace-master-key") {
      QV_ASSIGN_OR_RETURN(std::string node, st.Str("node"));
      named(node);
      return FromStatus(world_->ReplaceMasterKey(node));
    }
    if (a == "post-denial") {
      QV_ASSIGN_OR_RETURN(std::string request, st.Str("request"));
      QV_ASSIGN_OR_RETURN(std::string by, st.Str("by"));
      named(request + " denied by " + by + ", posted to the nodes");
      return FromStatus(world_->PostDenial(request, by));
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
  QV_RETURN_IF_ERROR(s.OnlyKeys({"sites", "nodes_per_site", "spares", "custodians", "quorum",
                                 "wan_latency_ms", "wan_mbps", "loss"}));
  QV_ASSIGN_OR_RETURN(int64_t spares, s.Int("spares", 0));
  t.spares = static_cast<uint32_t>(spares);
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

std::vector<fs::path> ShippedDrills(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "configs" / "drills", ec)) {
    if (e.path().extension() == ".toml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace qv::sim
