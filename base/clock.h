// Wall-clock time as an interface, so nodes, tests and sim/ can run on a
// fake clock. Implementations are thread-safe.
#ifndef QV_BASE_CLOCK_H_
#define QV_BASE_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace qv {

// Every time a signed record carries must lie in 2000-01-01 .. 2200-01-01
// (unix seconds): far from the int64 limits, so no sum or difference of two
// such times, or of one and a bounded duration, can overflow.
inline constexpr int64_t kMinPlausibleUnix = 946684800;
inline constexpr int64_t kMaxPlausibleUnix = 7258118400;
inline constexpr bool PlausibleUnix(int64_t t) {
  return t >= kMinPlausibleUnix && t <= kMaxPlausibleUnix;
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowUnix() const = 0;  // seconds since the epoch
  // A monotonic reading in milliseconds, for measuring how long something
  // took (its origin means nothing).
  virtual double MonotonicMs() const {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

class SystemClock : public Clock {
 public:
  int64_t NowUnix() const override { return static_cast<int64_t>(std::time(nullptr)); }
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now) : now_(now) {}
  int64_t NowUnix() const override { return now_.load(); }
  double MonotonicMs() const override { return 1000.0 * static_cast<double>(now_.load()); }
  void Set(int64_t now) { now_.store(now); }
  void Advance(int64_t seconds) { now_.fetch_add(seconds); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace qv

#endif  // QV_BASE_CLOCK_H_
