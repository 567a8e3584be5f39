#include "cli/drill_cmd.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/file_util.h"
#include "base/text.h"
#include "sim/drill.h"
#include "sim/sim_bench.h"

namespace qv {

namespace fs = std::filesystem;

std::pair<CLI::App*, CLI::App*> AddDrillCommand(CLI::App& app, DrillArgs& a, DrillBenchArgs& b) {
  auto* drill = app.add_subcommand(
      "drill", "Rehearse disasters and insider attacks on a deterministic simulated cluster");
  drill->require_subcommand(1);
  auto* run = drill->add_subcommand(
      "run",
      "Run drill files on the simulator: the real node and coordinator code, one thread, a "
      "seeded network, clock and disk. Each drill states what must happen (restored "
      "byte-identical; refused with a named reason; detected by the audit) and names the RAND "
      "RR-A2849-1 attack-vector category it rehearses. The same --seed gives the same run and "
      "a byte-identical --json report. Exit 1 if any drill FAILs.");
  run->add_option("FILE", a.files, "drill files (TOML)");
  run->add_flag("--all", a.all, "every shipped drill (configs/drills/*.toml)");
  run->add_option("--seed", a.seed, "seed of the simulated world")->capture_default_str();
  run->add_flag("--json", a.json, "machine-readable report on stdout");
  run->add_option("--report", a.report, "also write the Markdown report an auditor reads");
  run->add_option("--work", a.work, "folder for the simulated nodes' disks (default: temporary)");
  run->add_flag("--keep", a.keep, "keep the simulated disks afterwards, for inspection");
  run->add_flag("--live", a.live,
                "run against a real cluster on loopback instead (made by qv cluster init, its "
                "keys beside the cluster file): real kill -9, real files deleted and "
                "corrupted, so only on a cluster you can lose; drills with steps only the "
                "simulator can do (partitions, clocks, storage faults, attacker tools) are "
                "skipped");
  run->add_option("--cluster", a.cluster, "with --live: the cluster file");
  auto* bench = drill->add_subcommand(
      "bench",
      "Simulated throughput: a large simulated cluster taking many small backups and quorum "
      "restores on the real code, with events per second, peak memory and this machine's fsync "
      "and signature-verification rates measured in the same run");
  bench->add_option("--sites", b.sites, "simulated sites")->capture_default_str();
  bench->add_option("--nodes-per-site", b.nodes_per_site, "nodes in each site")
      ->capture_default_str();
  bench->add_option("--backups", b.backups, "backups to take")->capture_default_str();
  bench->add_option("--restores", b.restores, "quorum restores, spread over the backups")
      ->capture_default_str();
  bench->add_option("--size", b.size, "bytes per backup (4096, 4KiB, 1MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  bench->add_option("--seed", b.seed, "seed of the simulated world")->capture_default_str();
  bench->add_option("--work", b.work, "folder for the simulated disks (default: temporary)");
  bench->add_flag("--json", b.json, "machine-readable output");
  return {run, bench};
}

namespace {

// The shipped drills: beside the working directory when run from a
// checkout, else where the build found them.
fs::path DrillsRoot() {
  std::error_code ec;
  if (fs::is_directory("configs/drills", ec)) return fs::current_path();
#ifdef QV_SOURCE_DIR
  return QV_SOURCE_DIR;
#else
  return fs::current_path();
#endif
}

// The folder the drills write node disks into, which they may empty:
// `given` only if it does not exist or is empty (never a folder holding
// someone's files), else a fresh one, on tmpfs when there is one (the
// nodes fsync as on real disks, which costs nothing there).
Result<fs::path> OwnWorkDir(const std::string& given, const std::string& prefix) {
  std::error_code ec;
  if (!given.empty()) {
    const fs::path p = given;
    if (fs::exists(p, ec) && !(fs::is_directory(p, ec) && fs::is_empty(p, ec))) {
      return InvalidArgument("--work " + given +
                             ": must not exist or be empty (drills write and delete node disks "
                             "there)");
    }
    fs::create_directories(p, ec);
    if (ec) return IoError("--work " + given + ": " + ec.message());
    return p;
  }
  const fs::path base =
      fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path(ec);
  std::string templ = (base / (prefix + "XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) return ErrnoError("mkdtemp " + templ);
  return fs::path(templ);
}

}  // namespace

int CmdDrillRun(const DrillArgs& a) {
  std::vector<fs::path> files(a.files.begin(), a.files.end());
  if (a.all) {
    auto shipped = sim::ShippedDrills(DrillsRoot());
    files.insert(files.end(), shipped.begin(), shipped.end());
    if (shipped.empty()) {
      std::fprintf(stderr, "qv: error: no drills found in configs/drills/\n");
      return 1;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "qv: usage: qv drill run FILE... | --all [--seed N] (see --help)\n");
    return 2;
  }
  if (a.live != !a.cluster.empty()) {
    std::fprintf(stderr, "qv: usage: --live and --cluster FILE go together (see --help)\n");
    return 2;
  }
  std::error_code ec;
  auto owned = OwnWorkDir(a.work, "qv-drill-");
  if (!owned.ok()) {
    std::fprintf(stderr, "qv: error: %s\n", Printable(owned.status().message()).c_str());
    return 1;
  }
  const fs::path work = *owned;
  const auto start = std::chrono::steady_clock::now();
  std::vector<sim::DrillReport> reports;
  bool unreadable = false;
  for (size_t i = 0; i < files.size(); ++i) {
    sim::DrillOptions o;
    o.seed = a.seed;
    o.work_dir = work;
    if (a.live) {
      o.live_cluster = a.cluster;
      o.qv_binary = fs::read_symlink("/proc/self/exe", ec);
    }
    auto r = sim::RunDrill(files[i], o);
    if (!r.ok()) {
      std::fprintf(stderr, "qv: error: %s\n", Printable(r.status().message()).c_str());
      unreadable = true;
      continue;
    }
    if (!a.json) {
      std::fprintf(stderr, "drill %zu/%zu %-34s %s\n", i + 1, files.size(),
                   Printable(r->name).c_str(), sim::Verdict(*r));
    }
    reports.push_back(std::move(r).value());
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!a.keep && a.work.empty()) fs::remove_all(work, ec);
  if (a.json) {
    std::fputs(sim::DrillJson(reports, a.seed).c_str(), stdout);
  } else {
    std::fputs(sim::DrillTable(reports).c_str(), stdout);
    std::printf("seed %llu, %.1f s wall time%s\n", static_cast<unsigned long long>(a.seed), wall,
                a.keep ? (", disks kept in " + Printable(work.string())).c_str() : "");
  }
  if (!a.report.empty()) {
    Status s = WriteFileAtomic(a.report, AsBytes(sim::DrillMarkdown(reports, a.seed)), 0644);
    if (!s.ok()) {
      std::fprintf(stderr, "qv: error: %s\n", Printable(s.ToString()).c_str());
      return 1;
    }
  }
  bool pass = !unreadable;
  for (const auto& r : reports) pass = pass && (r.pass || r.skipped);
  return pass ? 0 : 1;
}

int CmdDrillBench(const DrillBenchArgs& b) {
  sim::SimBenchOptions o;
  o.sites = b.sites;
  o.nodes_per_site = b.nodes_per_site;
  o.backups = b.backups;
  o.restores = b.restores;
  o.size = b.size;
  o.seed = b.seed;
  std::error_code ec;
  auto owned = OwnWorkDir(b.work, "qv-drill-bench-");
  if (!owned.ok()) {
    std::fprintf(stderr, "qv: error: %s\n", Printable(owned.status().message()).c_str());
    return 1;
  }
  o.work_dir = *owned;
  auto r = sim::RunSimBench(o);
  if (b.work.empty()) fs::remove_all(o.work_dir, ec);
  if (!r.ok()) {
    std::fprintf(stderr, "qv: error: %s\n", Printable(r.status().ToString()).c_str());
    return 1;
  }
  std::fputs((b.json ? r->ToJson() : r->ToText()).c_str(), stdout);
  return 0;
}

}  // namespace qv
