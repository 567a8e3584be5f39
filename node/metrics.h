// A node's counters, written as Prometheus text exposition format (0.0.4)
// for node_exporter's textfile collector (issue 16): requests by kind and
// outcome, refusals by reason, bytes received and served, release latency,
// backups held, and witness lag per peer. Thread-safe; values only, never a
// payload, key or secret.
#ifndef QV_NODE_METRICS_H_
#define QV_NODE_METRICS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

// What a node tells `qv status` about itself (in its health answer) and
// writes as gauges. Wire form (base/wire.h): u32 version 1, then every
// field in order as u64 (now and last_witness as i64).
struct NodeStats {
  int64_t now = 0;
  uint64_t backups_published = 0, backups_prepared = 0, pending_requests = 0;
  uint64_t stored_bytes = 0;  // fragment, leaf and manifest files of the backups held
  uint64_t free_bytes = 0;    // on the file system of the node's data folder
  uint64_t alerts = 0;        // alert entries in the node's audit log
  int64_t last_witness = 0;   // when a witness round last ended (0: none yet)
};
Bytes EncodeNodeStats(const NodeStats& stats);
Result<NodeStats> DecodeNodeStats(ByteSpan encoded);

class Metrics {
 public:
  // One request handled: its kind (OpName), outcome, bytes in and out, and
  // how long it took.
  void Count(std::string_view op, const Status& outcome, uint64_t bytes_in, uint64_t bytes_out,
             double ms);
  // A witness round with `peer` ended at `unix` (its log compared or caught up).
  void Witnessed(const std::string& peer, int64_t unix);
  // When the last witness round with any peer ended (0: none yet).
  int64_t LastWitnessed() const;
  // A connection closed at accept: a cap on unauthenticated connections,
  // the node-wide one or the per-address one, was reached.
  void ConnectionCapped(bool per_address);

  using Gauges = NodeStats;
  // The whole exposition, `node` as a label on every sample.
  std::string Text(const std::string& node, const Gauges& gauges) const;

  // "ok", "permission_denied", "i_o_error", ...: a status's outcome label.
  static std::string OutcomeLabel(const Status& s);

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> requests_;  // (op, outcome)
  std::map<std::string, uint64_t> refusals_;                          // by op: permission_denied
  std::map<std::string, uint64_t> bytes_in_, bytes_out_;              // by op
  uint64_t releases_ = 0;
  double release_seconds_ = 0;
  std::map<std::string, int64_t> witnessed_;  // peer -> unix time of the last round
  uint64_t capped_total_ = 0, capped_per_address_ = 0;
};

}  // namespace qv

#endif  // QV_NODE_METRICS_H_
