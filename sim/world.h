// The simulated world the real nodes and coordinator run in (sim/): one
// thread, one seeded random stream, one simulated clock, a network of
// sites with latency, bandwidth, loss, partitions and connection resets.
// Nothing here re-implements node or coordinator behaviour: callers hand
// requests to the real NodeService through the same codec and peer
// identification as the server. Design after FoundationDB's simulation and
// TigerBeetle's VOPR: the same seed gives the same run.
//
// Not thread-safe: a simulation runs on one thread (SeededExecutor runs
// the coordinator's "parallel" work there, in a seeded order).
#ifndef QV_SIM_WORLD_H_
#define QV_SIM_WORLD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/executor.h"
#include "node/node_caller.h"

namespace qv::sim {

// SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number
// generators", OOPSLA 2014): fixed arithmetic, so a seed means the same run
// on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  uint64_t Below(uint64_t n);  // uniform in [0, n); n > 0
  bool Chance(double p);       // true with probability p
  Rng Fork(const std::string& label);

 private:
  uint64_t state_;
};

// Simulated time, in milliseconds since `start_unix`. Only the world moves
// it (network transfers, waits a drill asks for).
class SimClock : public Clock {
 public:
  explicit SimClock(int64_t start_unix) : start_(start_unix) {}
  int64_t NowUnix() const override { return start_ + ms_ / 1000; }
  double MonotonicMs() const override { return static_cast<double>(ms_); }
  int64_t ms() const { return ms_; }
  void AdvanceMs(int64_t ms) { ms_ += ms > 0 ? ms : 0; }

 private:
  const int64_t start_;
  int64_t ms_ = 0;
};

// One node's view of the simulated time: off by a skew a drill sets.
class SkewedClock : public Clock {
 public:
  explicit SkewedClock(const SimClock* base) : base_(base) {}
  int64_t NowUnix() const override { return base_->NowUnix() + skew_; }
  double MonotonicMs() const override { return base_->MonotonicMs(); }
  void set_skew(int64_t seconds) { skew_ = seconds; }
  int64_t skew() const { return skew_; }

 private:
  const SimClock* base_;
  int64_t skew_ = 0;
};

// Runs "parallel" tasks one after another on the calling thread, in an
// order drawn from the world's random stream.
class SeededExecutor : public Executor {
 public:
  explicit SeededExecutor(Rng* rng) : rng_(rng) {}
  void RunAll(std::vector<std::function<void()>> tasks) override;
  bool threaded() const override { return false; }

 private:
  Rng* rng_;
};

// Where a node of the simulation is: its service while it runs, and a
// count of restarts (a restart breaks every connection to it).
struct Endpoint {
  std::string site;
  NodeService* service = nullptr;  // null while down
  uint64_t incarnation = 0;
  // Set by a storage fault that crashes the node in the middle of a
  // request: the caller sees a reset, and the simulation takes the node
  // down before anything else runs.
  bool crashing = false;
  // A node its attacker controls: the shares it releases are wrong (a
  // random y for its own x = share_x) and the units it serves are altered.
  bool lying = false;
  uint32_t share_x = 0;
};

// Sites, links and the faults on them. A place is a site name; actors
// outside the cluster (the coordinator, requesters, attackers) sit at
// sites too ("ops" by default).
class Network {
 public:
  Network(SimClock* clock, Rng rng) : clock_(clock), rng_(rng) {}
  struct Link {
    int64_t latency_ms = 1;   // one way
    double bytes_per_ms = 0;  // 0: unlimited
    double loss = 0;          // chance a call's connection resets
  };
  void SetDefaultLinks(Link lan, Link wan) { lan_ = lan, wan_ = wan; }
  // Overrides for every link touching `site` (a slow site), and for the
  // link between two sites (both directions), which wins over both.
  void SetSiteLink(const std::string& site, Link link) { site_links_[site] = link; }
  void SetPairLink(const std::string& a, const std::string& b, Link link) {
    pair_links_[{a, b}] = link;
    pair_links_[{b, a}] = link;
  }
  void Cut(const std::string& a, const std::string& b);  // both directions
  void HealAll() { cut_.clear(); }
  Link LinkBetween(const std::string& a, const std::string& b) const;
  bool Connected(const std::string& a, const std::string& b) const;
  // One exchange of `bytes` out and `back` bytes in: time passes; fails
  // (as a reset connection) on a cut link or a lost packet.
  Status Transfer(const std::string& from, const std::string& to, size_t bytes);
  std::map<std::string, Endpoint>& endpoints() { return endpoints_; }
  uint64_t calls() const { return calls_; }
  uint64_t bytes() const { return bytes_; }
  // A digest of every exchange in order (who to whom, how many bytes): the
  // same seed gives the same trace, another seed another order.
  uint64_t trace() const { return trace_; }

 private:
  SimClock* clock_;
  Rng rng_;
  Link lan_, wan_;
  std::map<std::string, Link> site_links_;
  std::map<std::pair<std::string, std::string>, Link> pair_links_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::map<std::string, Endpoint> endpoints_;  // node id -> where it is
  uint64_t calls_ = 0, bytes_ = 0;
  uint64_t trace_ = 0xcbf29ce484222325ull;  // FNV-1a offset basis
};

// A connection from `site`, authenticated as `key`, to node `node`: the
// node identifies the caller exactly as its server would (by the key's
// X25519 form against the cluster file's pinned keys). A restart of the
// node breaks it, as a real connection would break.
class SimCaller : public NodeCaller {
 public:
  // Connects and hands shakes as a real client would: fails when the node
  // is down or cut off, or does not pin `key` (it then audits the refusal).
  // `from`: the calling node, when a node calls a peer (a lying node's
  // share-recovery values are altered on the way out).
  static Result<std::unique_ptr<NodeCaller>> Dial(Network* net, std::string site,
                                                  const PublicKey& key, std::string node,
                                                  std::string from = "");
  const std::string& name() const override { return node_; }
  Result<Response> Call(Request request) override;

 private:
  SimCaller(Network* net, std::string site, const PublicKey& key, std::string node);
  std::string from_;
  Status Handshake();
  Network* net_;
  std::string site_;
  PublicKey key_;
  std::string node_;
  uint64_t incarnation_ = 0;
  std::unique_ptr<NodeService::Session> session_;
  std::string refusal_;  // an unpinned caller's one answer
};

}  // namespace qv::sim

#endif  // QV_SIM_WORLD_H_
