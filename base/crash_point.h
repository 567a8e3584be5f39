// Crash points for the crash-safety tests (FoundationDB calls its kind
// "buggify"): CrashPoint("node-02:after-prepare") kills this process with
// SIGKILL, as a power cut would, when the environment variable QV_CRASH_AT
// names that point; otherwise it does nothing. Points sit right after a
// step is durable and before anyone hears of it, where a crash hurts most.
#ifndef QV_BASE_CRASH_POINT_H_
#define QV_BASE_CRASH_POINT_H_

#include <signal.h>

#include <cstdlib>
#include <string_view>

namespace qv {

inline void CrashPoint(std::string_view point) {
  static const char* at = std::getenv("QV_CRASH_AT");
  if (at != nullptr && point == at) ::raise(SIGKILL);
}

}  // namespace qv

#endif  // QV_BASE_CRASH_POINT_H_
