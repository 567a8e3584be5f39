#include "sim/repair_bench.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "crypto/sha256.h"
#include "erasure/reed_solomon.h"
#include "manifest/repair_plan.h"
#include "sim/bench_util.h"
#include "sim/simulation.h"

namespace qv::sim {

namespace fs = std::filesystem;

namespace {

double Sha256MbPerS() {
  const Bytes buf(1 << 20, 0x5a);
  const auto start = Steady::now();
  uint64_t n = 0;
  while (Since(start) < 0.3) {
    (void)MerkleLeafHash(buf);
    n += buf.size();
  }
  return MbPerS(n, Since(start));
}

// Output bytes per second of rebuilding m of k + m units (the repair's
// decode), 1 MiB units.
double ReconstructMbPerS(uint32_t k, uint32_t m) {
  auto rs = ReedSolomon::New(static_cast<int>(k), static_cast<int>(m));
  if (!rs.ok()) return 0;
  const size_t unit = 1 << 20;
  std::vector<Bytes> units(k + m, Bytes(unit, 0x11));
  std::vector<uint8_t*> ptrs;
  for (auto& u : units) ptrs.push_back(u.data());
  std::vector<bool> present(k + m, true), rebuild(k + m, false);
  for (uint32_t i = 0; i < m; ++i) {
    present[i] = false;
    rebuild[i] = true;
  }
  const auto start = Steady::now();
  uint64_t n = 0;
  while (Since(start) < 0.3) {
    if (!(*rs)->Reconstruct(unit, ptrs, present, rebuild).ok()) return 0;
    n += uint64_t{m} * unit;
  }
  return MbPerS(n, Since(start));
}

// 256 MiB written in 4 MiB pieces and made durable, as a node installs a
// rebuilt fragment.
double DiskWriteMbPerS(const fs::path& dir) {
  const fs::path f = dir / "write-probe";
  const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) return 0;
  const Bytes block(4 << 20, 0x33);
  const auto start = Steady::now();
  uint64_t n = 0;
  for (int i = 0; i < 64; ++i) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) break;
    n += block.size();
  }
  (void)::fdatasync(fd);
  const double s = Since(start);
  ::close(fd);
  std::error_code ec;
  fs::remove(f, ec);
  return MbPerS(n, s);
}

Topology WithSpares() {
  Topology t;
  t.sites = 3;
  t.nodes_per_site = 2;
  t.spares = 2;
  return t;
}

Status Approve(Simulation& s, const std::string& label) {
  for (const char* c : {"c1", "c2", "c3"}) QV_RETURN_IF_ERROR(s.Approve(label, c, c, true));
  return Status::Ok();
}

}  // namespace

Result<RepairBenchReport> RunRepairBench(const RepairBenchOptions& o) {
  if (o.size == 0 || o.size > (8ull << 30)) return InvalidArgument("size must be 1 B .. 8 GiB");
  if (o.recoveries == 0 || o.recoveries > 10000) {
    return InvalidArgument("recoveries must be 1..10000");
  }
  RepairBenchReport r;
  r.size = o.size;
  std::error_code ec;
  fs::create_directories(o.work_dir, ec);
  r.sha256_mb_s = Sha256MbPerS();
  r.disk_write_mb_s = DiskWriteMbPerS(o.work_dir);
  {
    SimOptions so;
    so.dir = o.work_dir / "large";
    QV_ASSIGN_OR_RETURN(auto sim, Simulation::New(WithSpares(), so));
    r.k = sim->cluster().k;
    r.m = sim->cluster().m;
    r.t = sim->cluster().t;
    r.rs_reconstruct_mb_s = ReconstructMbPerS(r.k, r.m);
    std::string detail;
    QV_RETURN_IF_ERROR(sim->Backup("large", o.size, &detail).status());
    auto start = Steady::now();
    QV_ASSIGN_OR_RETURN(BackupHealth sampled, sim->Scrub("large", 0.01));
    r.scrub_sample_s = Since(start);
    if (sampled.state != "healthy") return Internal("scrub at 1%: " + sampled.state);
    start = Steady::now();
    QV_ASSIGN_OR_RETURN(BackupHealth full, sim->Scrub("large", 1.0));
    r.scrub_full_s = Since(start);
    if (full.state != "healthy") return Internal("scrub at 100%: " + full.state);
    for (const auto& f : full.fragments) r.scrub_full_bytes += f.units_checked * full.unit_size;
    QV_RETURN_IF_ERROR(sim->Destroy("node-00"));
    QV_RETURN_IF_ERROR(sim->Destroy("node-01"));
    QV_ASSIGN_OR_RETURN(RepairPlan plan, sim->PlanRepairOf("large"));
    QV_RETURN_IF_ERROR(
        sim->Request("fix", "large", "operator", 86400, "repair", FormatRepairPlan(plan)));
    QV_RETURN_IF_ERROR(Approve(*sim, "fix"));
    start = Steady::now();
    QV_ASSIGN_OR_RETURN(RepairReport rep, sim->Repair("fix"));
    r.repair_s = Since(start);
    r.repair_read = rep.bytes_read;
    r.repair_rebuilt = rep.bytes_rebuilt;
    QV_ASSIGN_OR_RETURN(BackupHealth after, sim->Scrub("large", 0.01));
    if (after.state != "healthy") return Internal("after the repair: " + after.state);
  }
  {
    // Share recovery: the same approved in-place repair of a small backup,
    // run again and again (it is not spent, and its manifest stays).
    SimOptions so;
    so.dir = o.work_dir / "small";
    QV_ASSIGN_OR_RETURN(auto sim, Simulation::New(WithSpares(), so));
    std::string detail;
    QV_RETURN_IF_ERROR(sim->Backup("small", 4096, &detail).status());
    QV_RETURN_IF_ERROR(
        sim->Request("fix", "small", "operator", 86400, "repair", "fragment 1 to node-01"));
    QV_RETURN_IF_ERROR(Approve(*sim, "fix"));
    const auto start = Steady::now();
    for (uint32_t i = 0; i < o.recoveries; ++i) {
      QV_ASSIGN_OR_RETURN(RepairReport rep, sim->Repair("fix"));
      if (rep.shares_rebuilt != 1) return Internal("a recovery rebuilt no share");
    }
    r.recoveries = o.recoveries;
    r.recovery_ms = Since(start) * 1000 / o.recoveries;
  }
  r.peak_rss_bytes = PeakRss();
  return r;
}

std::string RepairBenchReport::ToText() const {
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "backup of %.0f MiB, k=%u m=%u t=%u, on the real node code in one process\n"
                "  scrub at 1%%:    %7.2f s (all six nodes)\n"
                "  scrub at 100%%:  %7.2f s, %.0f MB/s of fragment read and hashed\n"
                "  repair of a lost site: %.2f s, %.0f MiB read, %.0f MiB rebuilt: %.0f MB/s read\n"
                "  share recovery: %.1f ms per in-place repair of a 4 KiB backup (%u runs)\n"
                "machine limits measured in this run (one core unless noted):\n"
                "  SHA-256 %.0f MB/s, Reed-Solomon reconstruct %.0f MB/s of output,\n"
                "  sequential write + fdatasync %.0f MB/s on the work folder\n"
                "peak memory %.0f MiB\n",
                static_cast<double>(size) / (1 << 20), k, m, t, scrub_sample_s, scrub_full_s,
                MbPerS(scrub_full_bytes, scrub_full_s), repair_s,
                static_cast<double>(repair_read) / (1 << 20),
                static_cast<double>(repair_rebuilt) / (1 << 20), MbPerS(repair_read, repair_s),
                recovery_ms, recoveries, sha256_mb_s, rs_reconstruct_mb_s, disk_write_mb_s,
                static_cast<double>(peak_rss_bytes) / (1 << 20));
  return buf;
}

std::string RepairBenchReport::ToJson() const {
  nlohmann::json j = {{"size", size},
                      {"k", k},
                      {"m", m},
                      {"t", t},
                      {"scrub_sample_s", scrub_sample_s},
                      {"scrub_full_s", scrub_full_s},
                      {"scrub_full_bytes", scrub_full_bytes},
                      {"repair_s", repair_s},
                      {"repair_read_bytes", repair_read},
                      {"repair_rebuilt_bytes", repair_rebuilt},
                      {"recoveries", recoveries},
                      {"recovery_ms", recovery_ms},
                      {"machine_sha256_mb_s", sha256_mb_s},
                      {"machine_rs_reconstruct_mb_s", rs_reconstruct_mb_s},
                      {"machine_disk_write_mb_s", disk_write_mb_s},
                      {"peak_rss_bytes", peak_rss_bytes}};
  return j.dump();
}

}  // namespace qv::sim
