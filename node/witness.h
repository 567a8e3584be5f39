// Witnessing the other nodes' audit logs, one peer and one round per call,
// with no thread, socket or timer of its own: the daemon calls it on its
// timers over NodeClient connections, tests and sim/ over in-process or
// simulated callers.
//
// A round fetches the peer's newest signed checkpoint and checks that the
// entries since the last checkpoint this node countersigned (from entry 1
// the first time) chain to it; then it countersigns and keeps it (the
// witness record `qv audit verify` compares against the subject's log). It
// also reads the peer's clock (health) to measure skew.
//
// Bounded: a round reads at most `max_entries` entries and `max_bytes`
// bytes from one peer and stops at `max_time` (the caller's connection
// should carry the same deadline for each whole message). A long but valid
// catch-up resumes next round where this one stopped. A checkpoint claiming
// more than `max_ahead` entries past the last one witnessed is refused
// outright. So a lying node costs each witness at most one bounded round.
//
// Thread-safe: rounds for different peers may run at once (the daemon runs
// each peer on its own thread so that no peer can delay another); rounds
// for the same peer must not overlap.
#ifndef QV_NODE_WITNESS_H_
#define QV_NODE_WITNESS_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "configs/cluster_config.h"
#include "node/audit_log.h"
#include "node/node_caller.h"

namespace qv {

struct WitnessLimits {
  uint64_t max_entries = 65536;               // per peer per round
  uint64_t max_bytes = 64ull << 20;           // per peer per round
  std::chrono::milliseconds max_time{10000};  // per peer per round
  uint64_t max_ahead = 1ull << 24;            // entries past the last witnessed
};

struct WitnessOutcome {
  enum class Kind {
    kWitnessed,     // a newer checkpoint checked and countersigned
    kUnchanged,     // nothing new since the last round
    kCatchingUp,    // valid so far, a round's bound reached: resumes next round
    kUnreachable,   // no answer (transport error, time up): nothing concluded
    kMismatch,      // its log contradicts what was witnessed, or lies: alert
    kBoundExceeded  // claims more than a witness will ever check: alert
  };
  Kind kind = Kind::kUnreachable;
  std::string detail;
  std::optional<int64_t> skew;  // the peer's clock minus this node's, seconds
  uint64_t entries_read = 0;
  bool alert() const { return kind == Kind::kMismatch || kind == Kind::kBoundExceeded; }
};

class Witness {
 public:
  // `audit` (this node's log, where records are kept), `key` (countersigns)
  // and `clock` must outlive the witness.
  static Result<std::unique_ptr<Witness>> New(AuditLog* audit, const SigningKey* key,
                                              const Clock* clock, WitnessLimits limits);

  // One round for `peer` over `caller`. `stop`, when set, ends the round at
  // the next message.
  WitnessOutcome CheckPeer(const NodeEntry& peer, NodeCaller& caller,
                           const std::atomic<bool>* stop = nullptr) const;

  const WitnessLimits& limits() const { return limits_; }

 private:
  Witness(AuditLog* audit, const SigningKey* key, const Clock* clock, WitnessLimits limits)
      : audit_(audit), key_(key), clock_(clock), limits_(limits) {}
  // How far a walk towards a peer's newest checkpoint got: entries up to
  // `seq` are checked and chain to `head`.
  struct Progress {
    uint64_t from = 0;  // the witnessed seq the walk started from
    uint64_t seq = 0;
    ChainHash head{};
  };
  WitnessOutcome Walk(const NodeEntry& peer, NodeCaller& caller, const std::atomic<bool>* stop,
                      WitnessOutcome out) const;

  AuditLog* audit_;
  const SigningKey* key_;
  const Clock* clock_;
  const WitnessLimits limits_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Progress> progress_;  // guarded by mu_
};

}  // namespace qv

#endif  // QV_NODE_WITNESS_H_
