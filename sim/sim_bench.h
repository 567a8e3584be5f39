// Simulated throughput: a large simulated cluster (100 nodes in 10 sites by
// default) taking many small backups and quorum restores on the real node
// and coordinator code, one thread. Reports events (network exchanges) per
// wall second, simulated time, peak memory, and beside them the machine's
// own limits measured in the same run (fsyncs per second on the work
// folder, Ed25519 verifications per second), which bound what a node can do.
#ifndef QV_SIM_SIM_BENCH_H_
#define QV_SIM_SIM_BENCH_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/status.h"

namespace qv::sim {

struct SimBenchOptions {
  uint32_t sites = 10, nodes_per_site = 10;
  uint32_t backups = 1000, restores = 100;
  uint64_t size = 4096;  // bytes per backup
  uint64_t seed = 1;
  std::filesystem::path work_dir;
};

struct SimBenchReport {
  uint32_t nodes = 0, backups = 0, restores = 0, restores_identical = 0;
  double wall_s = 0, backup_wall_s = 0, restore_wall_s = 0;
  double simulated_s = 0;
  uint64_t events = 0, net_bytes = 0;
  double events_per_s = 0;
  uint64_t peak_rss_bytes = 0;
  double machine_fsyncs_per_s = 0, machine_verifies_per_s = 0;
  std::string ToText() const;
  std::string ToJson() const;
};

Result<SimBenchReport> RunSimBench(const SimBenchOptions& options);

}  // namespace qv::sim

#endif  // QV_SIM_SIM_BENCH_H_
