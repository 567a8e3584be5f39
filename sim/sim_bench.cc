#include "sim/sim_bench.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "crypto/identity.h"
#include "sim/bench_util.h"
#include "sim/simulation.h"

namespace qv::sim {

namespace fs = std::filesystem;

namespace {

// Write-and-fdatasync of one small block, as each durable step of a node
// does at least once, for about half a second.
double FsyncsPerSecond(const fs::path& dir) {
  const fs::path f = dir / "fsync-probe";
  const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) return 0;
  char block[4096] = {};
  const auto start = Steady::now();
  uint64_t n = 0;
  while (Since(start) < 0.5) {
    if (::pwrite(fd, block, sizeof block, 0) != sizeof block || ::fdatasync(fd) != 0) break;
    ++n;
  }
  const double s = Since(start);
  ::close(fd);
  std::error_code ec;
  fs::remove(f, ec);
  return s > 0 ? static_cast<double>(n) / s : 0;
}

double VerifiesPerSecond() {
  auto key = SigningKey::Generate();
  if (!key.ok()) return 0;
  const Bytes msg(512, 0x5a);
  const Signature sig = (*key)->Sign(msg);
  const auto start = Steady::now();
  uint64_t n = 0;
  while (Since(start) < 0.3) {
    if (!VerifySignature((*key)->public_key(), msg, sig).ok()) break;
    ++n;
  }
  return static_cast<double>(n) / Since(start);
}

}  // namespace

Result<SimBenchReport> RunSimBench(const SimBenchOptions& o) {
  if (o.sites == 0 || o.nodes_per_site == 0 || o.sites * o.nodes_per_site > 200) {
    return InvalidArgument("the simulated cluster must have 1..200 nodes");
  }
  if (o.backups == 0 || o.backups > 100000 || o.restores > o.backups || o.size > (64u << 20)) {
    return InvalidArgument("backups must be 1..100000, restores at most backups, size <= 64 MiB");
  }
  SimBenchReport r;
  std::error_code ec;
  fs::create_directories(o.work_dir, ec);
  r.machine_fsyncs_per_s = FsyncsPerSecond(o.work_dir);
  r.machine_verifies_per_s = VerifiesPerSecond();
  Topology t;
  t.sites = o.sites;
  t.nodes_per_site = o.nodes_per_site;
  SimOptions so;
  so.seed = o.seed;
  so.dir = o.work_dir / "cluster";
  fs::remove_all(so.dir, ec);
  const auto start = Steady::now();
  QV_ASSIGN_OR_RETURN(auto sim, Simulation::New(t, so));
  r.nodes = static_cast<uint32_t>(sim->cluster().nodes.size());
  const auto b0 = Steady::now();
  for (uint32_t i = 0; i < o.backups; ++i) {
    std::string detail;
    QV_RETURN_IF_ERROR(sim->Backup("b" + std::to_string(i), o.size, &detail).status());
    ++r.backups;
  }
  r.backup_wall_s = Since(b0);
  const auto r0 = Steady::now();
  for (uint32_t i = 0; i < o.restores; ++i) {
    // Spread over the backups taken.
    const std::string backup = "b" + std::to_string(static_cast<uint64_t>(i) * o.backups /
                                                    std::max<uint32_t>(o.restores, 1));
    const std::string q = "q" + std::to_string(i);
    QV_RETURN_IF_ERROR(sim->Request(q, backup, "operator", 3600));
    for (const char* c : {"c1", "c2", "c3"}) QV_RETURN_IF_ERROR(sim->Approve(q, c, c, true));
    auto res = sim->Restore(q, "operator", "", true);
    if (!res.restored) return Internal("restore " + q + " failed: " + res.detail);
    ++r.restores;
    r.restores_identical += res.identical;
  }
  r.restore_wall_s = Since(r0);
  r.wall_s = Since(start);
  r.simulated_s = static_cast<double>(sim->clock().ms()) / 1000;
  r.events = sim->net().calls();
  r.net_bytes = sim->net().bytes();
  r.events_per_s = static_cast<double>(r.events) / std::max(r.wall_s, 1e-9);
  r.peak_rss_bytes = PeakRss();
  return r;
}

std::string SimBenchReport::ToText() const {
  char buf[1536];
  std::snprintf(buf, sizeof buf,
                "simulated cluster: %u nodes, %u backups, %u quorum restores (%u byte-identical)\n"
                "  wall time          %8.1f s  (backups %.1f s, restores %.1f s)\n"
                "  simulated time     %8.1f s\n"
                "  events             %8llu network exchanges, %.1f MB\n"
                "  events per second  %8.0f\n"
                "  backups per second %8.1f   restores per second %.1f\n"
                "  peak memory        %8.1f MiB\n"
                "machine, measured in this run:\n"
                "  fsync per second   %8.0f  (work folder)\n"
                "  Ed25519 verify/s   %8.0f  (one core)\n",
                nodes, backups, restores, restores_identical, wall_s, backup_wall_s, restore_wall_s,
                simulated_s, static_cast<unsigned long long>(events),
                static_cast<double>(net_bytes) / 1e6, events_per_s,
                backups / std::max(backup_wall_s, 1e-9), restores / std::max(restore_wall_s, 1e-9),
                static_cast<double>(peak_rss_bytes) / 1048576.0, machine_fsyncs_per_s,
                machine_verifies_per_s);
  return buf;
}

std::string SimBenchReport::ToJson() const {
  nlohmann::ordered_json j = {{"nodes", nodes},
                              {"backups", backups},
                              {"restores", restores},
                              {"restores_identical", restores_identical},
                              {"wall_s", wall_s},
                              {"backup_wall_s", backup_wall_s},
                              {"restore_wall_s", restore_wall_s},
                              {"simulated_s", simulated_s},
                              {"events", events},
                              {"net_bytes", net_bytes},
                              {"events_per_s", events_per_s},
                              {"peak_rss_bytes", peak_rss_bytes},
                              {"machine_fsyncs_per_s", machine_fsyncs_per_s},
                              {"machine_ed25519_verifies_per_s", machine_verifies_per_s}};
  return j.dump(2) + "\n";
}

}  // namespace qv::sim
