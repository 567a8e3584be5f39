// Drills: scenario files (configs/drills/*.toml) run on the simulator
// (sim/simulation.h). A drill names the RAND "Securing AI Model Weights"
// (RR-A2849-1) attack-vector category it rehearses, a topology, and steps:
// actions (backups, requests, approvals, restores), faults (crashes, lost
// sites, partitions, slow links, skewed clocks, storage faults) and
// attacks (stolen disks and keys, forged approvals, replays, rewritten
// audit history, swapped weights, lying nodes, bad policies). A step may
// state what must happen: "ok", "restored" (byte-identical), "refused" or
// "failed" (with the reason it must name, nothing written), "detected"
// (by `audit verify` or the witnesses), "clean"; and evidence, a text an
// audit entry the step produced must contain.
//
// File format (TOML):
//   [drill]    name, rand_category, kind ("disaster" | "abuse"), summary
//   [topology] sites, nodes_per_site, custodians, quorum, wan_latency_ms,
//              wan_mbps, loss (all optional)
//   [[step]]   do = ACTION, its fields, expect, reason, evidence
// Unknown keys and actions are errors naming the file and step.
#ifndef QV_SIM_DRILL_H_
#define QV_SIM_DRILL_H_

#include <filesystem>
#include <string>
#include <vector>

#include "base/status.h"

namespace qv::sim {

struct StepReport {
  std::string action;    // "restore q1 as operator"
  std::string expected;  // "refused: quorum" or "" for a setup step
  std::string observed;
  bool pass = true;
  std::vector<std::string> evidence;  // audit entries the step produced
};

struct DrillReport {
  std::string file, name, rand_category, kind, summary;
  bool pass = false;
  bool skipped = false;  // live: a step needs the simulator (said in failure)
  bool live = false;     // ran on a real cluster: times are measured, not simulated
  std::string failure;   // the first failed step, or a setup error
  std::vector<StepReport> steps;
  int64_t rto_ms = -1;            // simulated time of the last successful restore
  std::vector<std::string> lost;  // committed backups no longer recoverable
  uint64_t backups = 0;
  std::vector<std::string> timeline;
  uint64_t net_calls = 0, net_bytes = 0;
  std::string trace;  // Network::trace() in hex
};

struct DrillOptions {
  uint64_t seed = 1;
  std::filesystem::path work_dir;       // a fresh folder per drill is made inside
  bool test_skip_quorum_check = false;  // sim_test only
  // Live: the cluster file of a loopback cluster `qv cluster init` made
  // (sim/live_cluster.h) instead of the simulator, and the qv binary that
  // runs its nodes. Drills with a step only the simulator can do are
  // skipped.
  std::filesystem::path live_cluster;
  std::filesystem::path qv_binary;
};

// Runs one drill file. A drill that cannot be read is an error; one that
// runs is a report, passed or failed.
Result<DrillReport> RunDrill(const std::filesystem::path& file, const DrillOptions& options);

// The shipped drills: configs/drills/*.toml under `root`, sorted.
std::vector<std::filesystem::path> ShippedDrills(const std::filesystem::path& root);

// "PASS", "FAIL" or "SKIP".
const char* Verdict(const DrillReport& r);

// Renderings of a run: a terminal table, JSON (byte-identical for the same
// seed) and the Markdown report handed to an auditor.
std::string DrillTable(const std::vector<DrillReport>& reports);
std::string DrillJson(const std::vector<DrillReport>& reports, uint64_t seed);
std::string DrillMarkdown(const std::vector<DrillReport>& reports, uint64_t seed);

}  // namespace qv::sim

#endif  // QV_SIM_DRILL_H_
