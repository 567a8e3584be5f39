#include "sim/live_cluster.h"

#include <arpa/inet.h>

#include <cinttypes>
#include <cstdio>

#include "coordinator/local_cluster_ctl.h"

namespace qv::sim {

namespace fs = std::filesystem;

namespace {

constexpr std::chrono::milliseconds kUpWait{30000};

bool Loopback(const std::string& host) {
  in_addr a{};
  if (host == "localhost") return true;
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace

Result<std::unique_ptr<LiveCluster>> LiveCluster::Open(const fs::path& cluster_file,
                                                       const fs::path& qv_binary,
                                                       const fs::path& work) {
  std::unique_ptr<LiveCluster> c(new LiveCluster());
  c->dir_ = cluster_file.parent_path().empty() ? fs::path(".") : cluster_file.parent_path();
  c->qv_ = qv_binary;
  c->work_ = work;
  QV_ASSIGN_OR_RETURN(c->cluster_, ClusterConfig::Load(cluster_file));
  for (const auto& n : c->cluster_.nodes) {
    if (!Loopback(n.host)) {
      return InvalidArgument(n.id + " listens on " + n.host +
                             ": live drills destroy data and run only against a cluster on "
                             "loopback (127.0.0.0/8)");
    }
  }
  auto load = [&](const std::string& actor, const fs::path& file) -> Status {
    auto k = SigningKey::Load(file);
    if (!k.ok()) return k.status().WithContext("live drills need the keys `qv cluster init` wrote");
    c->keys_[actor] = std::move(k).value();
    return Status::Ok();
  };
  QV_RETURN_IF_ERROR(load("coordinator", c->dir_ / "coordinator.key"));
  QV_RETURN_IF_ERROR(load("operator", c->dir_ / "operator.key"));
  for (const auto& p : c->cluster_.custodians) {
    QV_RETURN_IF_ERROR(load(p.id, c->dir_ / "custodians" / (p.id + ".key")));
  }
  for (const auto& n : c->cluster_.nodes) {
    QV_RETURN_IF_ERROR(load(n.id, c->dir_ / "nodes" / n.id / "node.key"));
  }
  QV_ASSIGN_OR_RETURN(c->keys_["attacker"], SigningKey::Generate());
  QV_RETURN_IF_ERROR(ClusterUp(c->dir_, c->qv_, kUpWait).status());
  c->Note("live cluster " + c->cluster_.name + ": " + std::to_string(c->cluster_.nodes.size()) +
          " node processes up");
  c->NewEvidence();  // what happened before the drill is not its evidence
  return c;
}

double LiveCluster::ElapsedMs() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
      .count();
}

void LiveCluster::Note(const std::string& line) {
  char stamp[32];
  const auto ms = static_cast<int64_t>(ElapsedMs());
  std::snprintf(stamp, sizeof stamp, "t+%" PRId64 ".%03" PRId64 "s ", ms / 1000, ms % 1000);
  events_.push_back(stamp + line);
}

Result<const SigningKey*> LiveCluster::Key(const std::string& actor) {
  auto it = keys_.find(actor);
  if (it == keys_.end()) return NotFound("no actor " + actor);
  return it->second.get();
}

Result<std::unique_ptr<ClusterSession>> LiveCluster::Session(const std::string& actor) {
  QV_ASSIGN_OR_RETURN(const SigningKey* key, Key(actor));
  ClientOptions o;
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.io_timeout = std::chrono::milliseconds(10000);
  return ClusterSession::Open(cluster_, key, o);
}

std::vector<std::string> LiveCluster::NewEvidence() {
  std::vector<std::string> out;
  auto session = Session("coordinator");
  if (!session.ok()) return out;
  AuditReport report = CheckClusterAudit(**session);
  for (const auto& n : report.nodes) {
    if (!n.reachable) continue;
    uint64_t& seen = evidence_seen_[n.node];
    if (n.entries.size() < seen) seen = 0;  // a log rebuilt from scratch
    for (const auto& e : n.entries) {
      if (e.seq <= seen) continue;
      seen = e.seq;
      if (IsEvidence(e)) out.push_back(EvidenceLine(n.node, e));
    }
  }
  return out;
}

Status LiveCluster::Crash(const std::string& node) {
  QV_RETURN_IF_ERROR(KillNode(dir_, node, std::chrono::milliseconds(5000)));
  Note(node + " killed (SIGKILL)");
  return Status::Ok();
}

Status LiveCluster::Restart(const std::string& node) {
  if (destroyed_.count(node)) return FailedPrecondition(node + " was destroyed");
  Status s = NodeUp(dir_, qv_, node, kUpWait);
  Note(node + (s.ok() ? " restarted from its disk" : " did not restart: " + s.message()));
  return s;
}

Status LiveCluster::Destroy(const std::string& node) {
  QV_RETURN_IF_ERROR(Crash(node));
  std::error_code ec;
  fs::remove_all(DataDir(node), ec);
  if (ec) return IoError("destroying " + node + "'s disk: " + ec.message());
  destroyed_.insert(node);
  evidence_seen_.erase(node);
  Note(node + " destroyed with its disk");
  return Status::Ok();
}

}  // namespace qv::sim
