#include "node/witness.h"

#include <algorithm>

namespace qv {

namespace {

using Kind = WitnessOutcome::Kind;

WitnessOutcome With(WitnessOutcome out, Kind kind, std::string detail) {
  out.kind = kind;
  out.detail = std::move(detail);
  return out;
}

// Entries asked for per message while walking a peer's log.
constexpr uint64_t kWalkPage = 1024;
// A clock reading is only taken from an answer this quick (seconds), so the
// round trip cannot pass for skew.
constexpr int64_t kMaxClockRoundTrip = 2;

}  // namespace

Result<std::unique_ptr<Witness>> Witness::New(AuditLog* audit, const SigningKey* key,
                                              const Clock* clock, WitnessLimits limits) {
  if (audit == nullptr || key == nullptr || clock == nullptr) {
    return InvalidArgument("witness: audit log, key and clock are required");
  }
  if (limits.max_entries == 0 || limits.max_bytes == 0 || limits.max_time.count() <= 0 ||
      limits.max_ahead == 0) {
    return InvalidArgument("witness: every limit must be positive");
  }
  return std::unique_ptr<Witness>(new Witness(audit, key, clock, limits));
}

WitnessOutcome Witness::CheckPeer(const NodeEntry& peer, NodeCaller& caller,
                                  const std::atomic<bool>* stop) const {
  WitnessOutcome out;
  // The peer's clock, read between two of ours.
  {
    Request h;
    h.op = Op::kHealth;
    const int64_t before = clock_->NowUnix();
    auto resp = CallChecked(caller, h);
    const int64_t after = clock_->NowUnix();
    if (!resp.ok()) return With(out, Kind::kUnreachable, resp.status().message());
    if (resp->payload.size() >= 8 && after - before <= kMaxClockRoundTrip) {
      const auto theirs = static_cast<int64_t>(GetU64BE(resp->payload.data()));
      // Bounded readings only: no subtraction below can overflow.
      if (PlausibleUnix(theirs) && PlausibleUnix(before) && PlausibleUnix(after)) {
        out.skew = theirs - (before + (after - before) / 2);
      }
    }
  }
  return Walk(peer, caller, stop, out);
}

WitnessOutcome Witness::Walk(const NodeEntry& peer, NodeCaller& caller,
                             const std::atomic<bool>* stop, WitnessOutcome out) const {
  const auto deadline = std::chrono::steady_clock::now() + limits_.max_time;
  Request r;
  r.op = Op::kGetCheckpoints;  // b = 0: the newest only
  auto resp = CallChecked(caller, r);
  if (!resp.ok()) return With(out, Kind::kUnreachable, resp.status().message());
  uint64_t bytes = resp->payload.size();
  auto cps = DecodeCheckpoints(resp->payload);
  if (!cps.ok() || cps->size() > 1) {
    return With(out, Kind::kMismatch, "its newest checkpoint is not one well-formed checkpoint");
  }
  if (cps->empty()) return With(out, Kind::kUnchanged, "no checkpoint yet");
  const Checkpoint& latest = cps->front();
  if (latest.node_id != peer.id || !latest.Verify(peer.public_key).ok()) {
    return With(out, Kind::kMismatch,
                "newest checkpoint does not verify under " + peer.id + "'s pinned key");
  }
  const auto prev = audit_->LastWitnessed(peer.id);
  const uint64_t from = prev ? prev->seq : 0;
  if (latest.seq < from) {
    return With(out, Kind::kMismatch,
                "log shrank: witnessed entry " + std::to_string(from) +
                    ", now newest checkpoint is at " + std::to_string(latest.seq));
  }
  if (prev && latest.seq == from) {
    if (latest.head != prev->head) {
      return With(out, Kind::kMismatch, "checkpoint at the same entry changed");
    }
    return With(out, Kind::kUnchanged, "");
  }
  if (latest.seq - from > limits_.max_ahead) {
    return With(out, Kind::kBoundExceeded,
                "newest checkpoint claims entry " + std::to_string(latest.seq) + ", " +
                    std::to_string(latest.seq - from) + " past the last witnessed (at most " +
                    std::to_string(limits_.max_ahead) + " are checked); not witnessed");
  }
  // Resume a walk that an earlier round began from the same witnessed entry.
  Progress p{from, from, prev ? prev->head : ChainHash{}};
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = progress_.find(peer.id);
    if (it != progress_.end() && it->second.from == from && it->second.seq <= latest.seq) {
      p = it->second;
    }
  }
  auto save = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    progress_[peer.id] = p;
  };
  while (p.seq < latest.seq) {
    if ((stop != nullptr && stop->load()) || std::chrono::steady_clock::now() >= deadline) {
      save();
      return With(out, Kind::kCatchingUp,
                  "stopped at entry " + std::to_string(p.seq) + " of " +
                      std::to_string(latest.seq) + " (time bound)");
    }
    if (out.entries_read >= limits_.max_entries || bytes >= limits_.max_bytes) {
      save();
      return With(out, Kind::kCatchingUp,
                  "stopped at entry " + std::to_string(p.seq) + " of " +
                      std::to_string(latest.seq) + " (entry or byte bound of a round)");
    }
    Request g;
    g.op = Op::kGetAudit;
    g.a = p.seq + 1;
    g.b = std::min({latest.seq - p.seq, kWalkPage, limits_.max_entries - out.entries_read});
    auto page = CallChecked(caller, g);
    if (!page.ok()) {
      save();
      return With(out, Kind::kUnreachable, page.status().message());
    }
    bytes += page->payload.size();
    auto entries = DecodeEntries(page->payload);
    if (!entries.ok()) return With(out, Kind::kMismatch, "unreadable audit entries");
    if (entries->empty() || entries->size() > g.b) {
      return With(out, Kind::kMismatch,
                  entries->empty() ? "entries before the newest checkpoint are gone"
                                   : "answered more entries than asked for");
    }
    for (const auto& e : *entries) {
      if (e.seq != p.seq + 1 || e.prev != p.head || e.ComputeHash() != e.hash) {
        const std::string base = prev ? "the history witnessed at entry " + std::to_string(from)
                                      : std::string("its first entry");
        return With(out, Kind::kMismatch,
                    "entry " + std::to_string(p.seq + 1) + " does not extend " + base);
      }
      p.head = e.hash;
      ++p.seq;
      ++out.entries_read;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    progress_.erase(peer.id);
  }
  if (p.head != latest.head) {
    return With(out, Kind::kMismatch, "newest checkpoint does not match the entries");
  }
  WitnessRecord rec{audit_->node_id(), latest, {}};
  rec.countersignature = key_->Sign(rec.SignedBytes());
  if (Status st = audit_->RecordWitness(rec); !st.ok()) {
    return With(out, Kind::kUnreachable, "could not keep the witness record: " + st.message());
  }
  return With(out, Kind::kWitnessed, "entry " + std::to_string(latest.seq));
}

}  // namespace qv
