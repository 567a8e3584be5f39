// `qv repair bench`: what healing costs on this machine, on the real node
// and coordinator code in one process (sim/): a backup of `size` bytes in
// a 3-site cluster with a spare site, scrubbed at 1% and at 100% of its
// units, a whole site lost and repaired onto the spares, and `recoveries`
// share recoveries (in-place repairs of a small backup, each rebuilding a
// share from t helpers). Beside them, the machine's own limits measured in
// the same run: SHA-256 and Reed-Solomon reconstruction per core, and
// sequential write with fdatasync on the work folder. Times are wall time
// (the simulated network adds none).
#ifndef QV_SIM_REPAIR_BENCH_H_
#define QV_SIM_REPAIR_BENCH_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/status.h"

namespace qv::sim {

struct RepairBenchOptions {
  uint64_t size = 1ull << 30;
  uint32_t recoveries = 100;
  std::filesystem::path work_dir;
};

struct RepairBenchReport {
  uint64_t size = 0;
  uint32_t k = 0, m = 0, t = 0;
  double scrub_sample_s = 0, scrub_full_s = 0;  // one scrub of the backup, all six nodes
  uint64_t scrub_full_bytes = 0;                // fragment bytes the full scrub read
  double repair_s = 0;
  uint64_t repair_read = 0, repair_rebuilt = 0;
  uint32_t recoveries = 0;
  double recovery_ms = 0;  // per in-place repair of a small backup (share recovery included)
  double sha256_mb_s = 0, rs_reconstruct_mb_s = 0, disk_write_mb_s = 0;
  uint64_t peak_rss_bytes = 0;
  std::string ToText() const;
  std::string ToJson() const;
};

Result<RepairBenchReport> RunRepairBench(const RepairBenchOptions& options);

}  // namespace qv::sim

#endif  // QV_SIM_REPAIR_BENCH_H_
