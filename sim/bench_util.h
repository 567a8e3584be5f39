// Helpers the simulator's benchmarks share (internal to sim/): wall time
// since a point, throughput, and the process's peak resident memory.
#ifndef QV_SIM_BENCH_UTIL_H_
#define QV_SIM_BENCH_UTIL_H_

#include <sys/resource.h>

#include <chrono>
#include <cstdint>

namespace qv::sim {

using Steady = std::chrono::steady_clock;

inline double Since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

// MB (10^6 bytes) per second; 0 for no time.
inline double MbPerS(uint64_t bytes, double s) {
  return s > 0 ? static_cast<double>(bytes) / s / 1e6 : 0;
}

inline uint64_t PeakRss() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

}  // namespace qv::sim

#endif  // QV_SIM_BENCH_UTIL_H_
