// The node's request logic: requests in, responses out, storage behind it.
// No sockets here, so the server, tests and sim/ drive the same code.
//
// Peers are identified by the static key their authenticated channel proved,
// against the cluster file's pinned keys: the coordinator, the other nodes,
// requesters, or unknown (the server drops those before reading any
// request). Each request is authorized by role, executed, and logged as one
// line: peer, request, backup, bytes, outcome, duration. Secrets never reach
// the log.
//
// Release: nothing of a backup (share or fragment units) leaves the node
// without a quorum certificate that this node itself verified against the
// backup's signed policy (quorum/verify.h) at its own clock, and whose
// request id it has durably marked spent. The share leaves sealed to the
// request's one-time key; the connection that presented the certificate
// may then fetch units until the request expires. Every request seen,
// approval checked, release, refusal and replay goes to the audit log.
//
// NodeService is thread-safe; a Session holds one connection's state (an
// upload in progress) and is used by one thread at a time.
#ifndef QV_NODE_NODE_SERVICE_H_
#define QV_NODE_NODE_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "configs/cluster_config.h"
#include "crypto/noise.h"
#include "manifest/repair_plan.h"
#include "node/audit_log.h"
#include "node/messages.h"
#include "node/metrics.h"
#include "node/node_store.h"
#include "node/share_recovery.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace qv {

enum class PeerRole { kUnknown, kCoordinator, kNode, kRequester, kCustodian };

struct PeerInfo {
  PeerRole role = PeerRole::kUnknown;
  std::string name;  // "coordinator", a node or requester id, or "unknown:<key prefix>"
  PublicKey key{};   // the pinned Ed25519 key the peer proved (zeros when unknown)
};

struct NodeServiceOptions {
  AuditLog* audit = nullptr;  // not owned; null only in tests that do not audit
  const Clock* clock = SystemClock::Default();
  int64_t max_skew = 300;  // seconds
  // The node's identity (not owned): its X25519 form checks that a spent
  // certificate presented again comes from the holder of the request's
  // reply key. Without it every second presentation is a replay.
  const SigningKey* identity = nullptr;
  uint32_t max_retries = 3;  // presentations after the first, per request
  // Refusals of unpinned peers are audited once per address and interval,
  // then counted: a flood stays visible without growing the log unbounded.
  int64_t refusal_interval_seconds = 60;
  size_t max_refusal_addresses = 256;  // beyond: counted under "other"
  // How this node reaches its peers while handling a request (a backup id
  // is checked against theirs at prepare); none in tests that need none.
  std::function<Result<Response>(const NodeEntry& peer, const Request& request)> peers;
  // Tests only (sim/'s self-test that drills cannot pass by accident): the
  // quorum check's verdict ignored, so the drills that rehearse it must
  // FAIL. No config file, flag or environment variable sets it.
  bool test_skip_quorum_check = false;
  // Submissions and votes one pinned peer may post per minute (issue 16).
  uint32_t max_posts_per_minute = 30;
  // Called (outside any lock) for each request newly kept as pending, with
  // its id and a one-line summary (no secrets); the daemon runs the node
  // config's on_pending command with them.
  std::function<void(const std::string& id, const std::string& summary)> on_pending;
  // Tests only: answers scrub challenges from the stored leaf hashes, not
  // the data (a node that lost its fragment but kept its leaves).
  bool test_scrub_from_leaves = false;
};

// What a retry's proof of possession of the reply key is computed over
// (crypto/secretbox.h): the request id and the node it is presented to.
std::string ReleaseRetryContext(const RequestId& request, const std::string& node_id);

// One "approval" audit event per check, with its verdict.
void AppendApprovalEvents(const std::vector<ApprovalCheck>& checks, const std::string& peer,
                          const std::string& backup, const std::string& rid,
                          std::vector<AuditEvent>* events);

// Where log lines go. The default writes to stderr.
using LogSink = std::function<void(const std::string& line)>;

class NodeService {
 public:
  class Session {
   public:
    explicit Session(PeerInfo peer) : peer_(std::move(peer)) {}
    const PeerInfo& peer() const { return peer_; }
    // Hands back the buffer of a response that has been sent. The next fetch
    // reads its units into it, so they are not written twice (zero-fill, then
    // read) into a fresh buffer for every fetch.
    void Recycle(Bytes buffer) { spare_ = std::move(buffer); }

   private:
    friend class NodeService;
    PeerInfo peer_;
    std::unique_ptr<Upload> upload_;
    Bytes manifest_;  // pieces of the upload's manifest (kManifestData), bounded
    std::map<BackupId, int64_t> released_;  // backup -> unix time the release lapses
    Bytes spare_;
    // A repair this connection presented a valid certificate for.
    struct RepairGrant {
      BackupId backup{};
      RepairPlan plan;
      Bytes manifest;  // the signed manifest the certificate names
      std::string request;
      int64_t expires = 0;
    };
    std::optional<RepairGrant> repair_;
  };

  NodeService(NodeStore* store, ClusterConfig cluster, std::string node_id, LogSink log,
              NodeServiceOptions options = {});

  PeerInfo Identify(const noise::DhPublic& remote_static) const;
  Response Handle(Session& session, const Request& request);
  void Log(const std::string& line) const;
  // Appends to the audit log (if any); a failure to audit is logged loudly.
  // AuditDurably also returns it, for actions that must not happen unaudited.
  void Audit(const AuditEvent& event) const;
  Status AuditDurably(const AuditEvent& event) const;
  // All of `events` in one commit (and, with `checkpoint`, a checkpoint).
  Status AuditDurably(const std::vector<AuditEvent>& events, bool checkpoint = false) const;
  // A connection from `address` (no port) proved key `name`, which is not
  // pinned. FlushRefusals audits the counts of intervals that have ended
  // (all of them with `all`); the daemon calls it on a timer and at stop.
  void RefuseUnknownPeer(const std::string& address, const std::string& name);
  void FlushRefusals(bool all = false);
  // Cooperative termination of two-phase commit (manifest/commit_record.h),
  // one round: for every prepared backup, asks the other nodes it is placed
  // on (through `call`) for the commit record; commits with one found, or,
  // past the deadline, once every peer has promised to abort or does not
  // hold the backup, aborts. Unreachable peers leave it for the next round.
  // Each decision is audited. The daemon runs it on its timer.
  using PeerCall = std::function<Result<Response>(const NodeEntry& peer, const Request& request)>;
  void Settle(const PeerCall& call);
  // A peer's clock minus this node's (seconds), as a witness round measured
  // it, or nullopt when it could not be read. A peer beyond max_skew is
  // alerted on (once, until it changes); when this node disagrees with
  // more than half of all its peers, its own clock is the suspect, and it
  // releases nothing until they agree again.
  void NotePeerClock(const std::string& peer, std::optional<int64_t> skew);
  // Why this node does not trust its clock now; empty when it does.
  std::string ClockProblem() const;
  const std::string& node_id() const { return node_id_; }
  // The cluster as this node knows it now: the cluster file's, plus nodes
  // enrolled since it started (kEnroll). A snapshot: it never changes, a
  // later enrollment gives a new one.
  std::shared_ptr<const ClusterConfig> cluster() const;
  // This node's backups, disk, pending requests, alerts and witnessing,
  // read now (what its health answer carries).
  NodeStats Stats();
  // Counters of what this node handled (node/metrics.h).
  Metrics& metrics() { return metrics_; }

 private:
  std::map<noise::DhPublic, PeerInfo> PinKeys(const ClusterConfig& cluster) const;
  // kEnroll (node/node_enroll.cc): the certificate verified against the
  // cluster as it is now, recorded (NodeStore::AddEnrollment) and audited,
  // then the new node's key pinned.
  Result<Response> Enroll(Session& s, const Request& r);
  // The ceremony through the cluster (node/node_ceremony.cc).
  Result<Response> SubmitRequest(Session& s, const Request& r);
  Result<Response> ListPending(Session& s, const Request& r);
  Result<Response> PostApproval(Session& s, const Request& r);
  // The backup's signed manifest and the request checked against it as a
  // release would check it (CheckRequest), at this node's clock.
  Status CheckPendingRequest(const SignedRequest& request, SignedManifest* manifest) const;
  // Ok when a request about `backup` is pending here (unspent, unexpired)
  // and the backup's policy lists the session's custodian key.
  Status AwaitsCustodian(const Session& s, const BackupId& backup) const;
  // kPermissionDenied once `peer` posted kMaxPostsPerMinute times in the
  // last minute (the first refusal each minute is audited by Handle).
  Status RateLimit(const std::string& peer);
  Result<Response> Dispatch(Session& s, const Request& r);
  Result<Response> Release(Session& s, const Request& r);
  Result<Response> PostDenial(Session& s, const Request& r);
  Result<Response> Scrub(Session& s, const Request& r);
  // Repair (node/node_repair.cc).
  Result<Response> RepairOpen(Session& s, const Request& r);
  Result<const Session::RepairGrant*> Grant(const Session& s, const BackupId& backup) const;
  Result<Response> ShareRecoverStart(Session& s, const Request& r);
  Result<Response> ShareRecoverDeal(Session& s, const Request& r);
  Result<Response> ShareRecoverForward(Session& s, const Request& r);
  Result<Response> ShareValue(Session& s, const Request& r);
  Result<Response> RepairInstall(Session& s, const Request& r);
  Result<Response> ManifestHistory(const Request& r);
  std::optional<std::string> SiteOf(const std::string& node) const;
  // A backup id is bound to one manifest for good: refused when a peer
  // holds another manifest under `id` (a node that lost its copy is not
  // talked into a different one).
  Status CheckIdAcrossPeers(const BackupId& id, ByteSpan manifest, const std::string& by);
  // Appends `refusal` to `events` and commits them all: a kPermissionDenied
  // saying `why` (and whether the refusal could not be audited).
  Status RefuseAudited(std::vector<AuditEvent>& events, AuditEvent refusal, const Status& why);
  // Records the valid denials among `checks` of request `rid`; false (and
  // logged) when they could not be recorded.
  Status RememberDenials(const std::string& rid, const std::vector<ApprovalCheck>& checks);
  NodeStore* store_;
  Metrics metrics_;
  mutable std::mutex cluster_mu_;
  std::shared_ptr<const ClusterConfig> cluster_;  // guarded by cluster_mu_
  std::mutex enroll_mu_;                          // one enrollment at a time
  std::mutex posts_mu_;
  std::map<std::string, std::vector<int64_t>> posts_;  // peer -> post times; posts_mu_
  // What enrollment never changes, read without the lock.
  PublicKey coordinator_{};
  std::vector<Principal> requesters_;
  const std::string node_id_;
  LogSink log_;
  NodeServiceOptions opt_;
  SecretBytes x25519_secret_;  // of opt_.identity, if any
  std::array<uint8_t, 32> x25519_public_{};
  mutable std::mutex log_mu_;
  struct Refusals {
    int64_t since = 0;
    uint64_t more = 0;  // refusals after the audited first one
    std::string last_key;
  };
  std::mutex refusals_mu_;
  std::map<std::string, Refusals> refusals_;  // by address; guarded by refusals_mu_
  mutable std::mutex clock_mu_;
  std::map<std::string, int64_t> skews_;         // peer -> skew; guarded by clock_mu_
  std::map<std::string, int64_t> skew_alerted_;  // peer -> skew last alerted on
  std::string clock_problem_;                    // guarded by clock_mu_
  std::map<noise::DhPublic, PeerInfo> pinned_;   // X25519 form -> party; cluster_mu_
  std::unique_ptr<ShareRecoveries> recoveries_;  // set once; thread-safe
};

}  // namespace qv

#endif  // QV_NODE_NODE_SERVICE_H_
