// Where concurrent work runs: the coordinator's per-node calls (connecting,
// releasing, receipts) and its senders and read-ahead. Production runs it on
// threads; tests and sim/ run it on the calling thread in an order they
// choose (a seeded one in sim/), so a run is reproducible.
#ifndef QV_BASE_EXECUTOR_H_
#define QV_BASE_EXECUTOR_H_

#include <functional>
#include <thread>
#include <vector>

namespace qv {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs every task and returns when all have finished. Tasks must not wait
  // on one another.
  virtual void RunAll(std::vector<std::function<void()>> tasks) = 0;
  // True when work may also run on long-lived threads of its own (a sink's
  // sender, a source's read-ahead); false: only on the calling thread.
  virtual bool threaded() const = 0;
};

// One thread per task. Thread-safe.
class ThreadExecutor : public Executor {
 public:
  void RunAll(std::vector<std::function<void()>> tasks) override {
    std::vector<std::thread> threads;
    threads.reserve(tasks.size());
    for (auto& t : tasks) threads.emplace_back(std::move(t));
    for (auto& t : threads) t.join();
  }
  bool threaded() const override { return true; }
  static ThreadExecutor* Default() {
    static ThreadExecutor executor;
    return &executor;
  }
};

// Every task on the calling thread, in the order given.
class InlineExecutor : public Executor {
 public:
  void RunAll(std::vector<std::function<void()>> tasks) override {
    for (auto& t : tasks) t();
  }
  bool threaded() const override { return false; }
};

}  // namespace qv

#endif  // QV_BASE_EXECUTOR_H_
