#include "quorum/enrollment.h"

#include <algorithm>
#include <charconv>

#include "base/text.h"
#include "base/wire.h"

namespace qv {

namespace {

Status Refuse(const std::string& why) { return Status(StatusCode::kPermissionDenied, why); }

// The cluster's own approval rule, as a policy: its custodians, its quorum,
// its longest request lifetime.
Policy ClusterPolicy(const ClusterConfig& cluster) {
  Policy p;
  for (const auto& c : cluster.custodians) p.custodians.push_back({c.id, c.public_key});
  p.quorum = cluster.quorum;
  p.max_request_seconds = cluster.max_request_seconds;
  p.quorum_ops = {std::string(kOpEnroll)};
  return p;
}

}  // namespace

Digest MembershipDigest(const ClusterConfig& cluster) {
  Sha256 h;
  WireWriter w;
  w.Str(kMembershipDomain).Str(cluster.name).Fixed(cluster.coordinator);
  w.U32(static_cast<uint32_t>(cluster.nodes.size()));
  for (const auto& n : cluster.nodes) w.Str(n.id).Str(n.site).Fixed(n.public_key);
  h.Update(w.bytes());
  return h.Finish();
}

std::string EnrollmentText(const NodeEntry& n) {
  return "node " + n.id + " site " + n.site + " at " + n.host + ":" + std::to_string(n.port) +
         " key " + PublicKeyToText(n.public_key);
}

Result<NodeEntry> ParseEnrollmentText(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("not an enrollment (\"node ID site SITE at HOST:PORT key KEY\"): " +
                           Printable(std::string(text.substr(0, 200))));
  };
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos <= text.size() && words.size() < 9) {
    const size_t sp = text.find(' ', pos);
    words.push_back(text.substr(pos, sp == std::string_view::npos ? text.npos : sp - pos));
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  if (words.size() != 8 || words[0] != "node" || words[2] != "site" || words[4] != "at" ||
      words[6] != "key") {
    return bad();
  }
  NodeEntry n;
  n.id = std::string(words[1]);
  n.site = std::string(words[3]);
  const std::string_view address = words[5];
  const size_t colon = address.rfind(':');
  if (n.id.empty() || n.site.empty() || colon == std::string_view::npos || colon == 0) return bad();
  n.host = std::string(address.substr(0, colon));
  const std::string_view port = address.substr(colon + 1);
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) return bad();
  n.port = static_cast<uint16_t>(p);
  QV_ASSIGN_OR_RETURN(n.public_key, PublicKeyFromText(words[7]));
  if (EnrollmentText(n) != text) return bad();  // one spelling only
  return n;
}

QuorumRequest EnrollmentRequest(const ClusterConfig& cluster, const NodeEntry& node,
                                const Principal& requester, std::string purpose,
                                int64_t created_unix, int64_t expires_unix) {
  QuorumRequest q;
  q.operation = std::string(kOpEnroll);
  q.backup_name = node.id;
  q.manifest_hash = MembershipDigest(cluster);
  q.requester_id = requester.id;
  q.requester_key = requester.public_key;
  q.purpose = std::move(purpose);
  q.destination = EnrollmentText(node);
  q.created_unix = created_unix;
  q.expires_unix = expires_unix;
  return q;
}

Result<NodeEntry> CheckEnrollmentRequest(const SignedRequest& request,
                                         const ClusterConfig& cluster) {
  const QuorumRequest& q = request.request();
  if (q.operation != kOpEnroll) {
    return Refuse("request is for " + Printable(q.operation) + ", not enroll");
  }
  if (q.backup_id != BackupId{}) return Refuse("an enrollment names no backup");
  if (q.manifest_hash != MembershipDigest(cluster)) {
    return Refuse("the enrollment is for another membership than this cluster's (" +
                  std::to_string(cluster.nodes.size()) +
                  " nodes): it was approved for another cluster or before another change");
  }
  auto node = ParseEnrollmentText(q.destination);
  if (!node.ok()) return Refuse(node.status().message());
  if (q.backup_name != node->id) {
    return Refuse("request is titled " + Printable(q.backup_name) + " but enrolls node " +
                  Printable(node->id));
  }
  ClusterConfig next = cluster;
  next.nodes.push_back(*node);
  if (Status st = next.Validate("the enrolled node"); !st.ok()) return Refuse(st.message());
  return *node;
}

Result<Verdict> VerifyEnrollment(const Certificate& cert, const ClusterConfig& cluster,
                                 const VerifyInput& in, std::vector<ApprovalCheck>* checks) {
  if (cluster.custodians.empty() || cluster.quorum == 0) {
    return Refuse("the cluster file lists no custodians: no node can be enrolled");
  }
  auto node = CheckEnrollmentRequest(cert.request, cluster);
  Status request_checked = node.status();
  if (request_checked.ok())
    request_checked = CheckRequester(cert.request.request(), cluster.requesters);
  if (request_checked.ok()) {
    request_checked = CheckTimes(cert.request.request(), cluster.max_request_seconds, in);
  }
  return VerifyApprovals(cert, ClusterPolicy(cluster), in, request_checked, checks);
}

Result<ClusterConfig> ApplyEnrollment(const ClusterConfig& cluster, ByteSpan certificate) {
  QV_ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(certificate));
  VerifyInput in;
  in.operation = kOpEnroll;
  in.now = cert.request.request().expires_unix;
  in.max_skew = 0;
  QV_RETURN_IF_ERROR(VerifyEnrollment(cert, cluster, in).status());
  QV_ASSIGN_OR_RETURN(NodeEntry node, ParseEnrollmentText(cert.request.request().destination));
  ClusterConfig next = cluster;
  next.nodes.push_back(std::move(node));
  next.enrollments.emplace_back(certificate.begin(), certificate.end());
  return next;
}

Result<Digest> CheckEnrollments(const ClusterConfig& file) {
  // The first membership: the file without the nodes its enrollments name.
  std::vector<NodeEntry> enrolled;
  for (size_t i = 0; i < file.enrollments.size(); ++i) {
    const std::string which = "enrollment " + std::to_string(i + 1);
    auto cert = Certificate::Parse(file.enrollments[i]);
    if (!cert.ok()) return cert.status().WithContext(which);
    auto node = ParseEnrollmentText(cert->request.request().destination);
    if (!node.ok()) return node.status().WithContext(which);
    enrolled.push_back(*node);
  }
  ClusterConfig chain = file;
  chain.enrollments.clear();
  chain.nodes.clear();
  for (const auto& n : file.nodes) {
    const bool later = std::any_of(enrolled.begin(), enrolled.end(),
                                   [&](const NodeEntry& e) { return e.id == n.id; });
    if (!later) chain.nodes.push_back(n);
  }
  const Digest first = MembershipDigest(chain);
  for (size_t i = 0; i < file.enrollments.size(); ++i) {
    const std::string which =
        "enrollment " + std::to_string(i + 1) + " (node " + Printable(enrolled[i].id) + ")";
    const NodeEntry* listed = file.FindNode(enrolled[i].id);
    if (listed == nullptr) {
      return PermissionDenied(which + ": the cluster file does not list the node it enrolled");
    }
    if (listed->site != enrolled[i].site || listed->public_key != enrolled[i].public_key) {
      return PermissionDenied(which + ": the cluster file lists node " + Printable(listed->id) +
                              " with another site or key than the certificate enrolled");
    }
    auto next = ApplyEnrollment(chain, file.enrollments[i]);
    if (!next.ok()) return next.status().WithContext(which);
    chain = std::move(*next);
    chain.nodes.back().host = listed->host;  // a node may move; its key may not
    chain.nodes.back().port = listed->port;
  }
  // Enrolled nodes come after the first membership, in enrollment order:
  // backups are placed on the first k + m nodes, so order is membership.
  if (MembershipDigest(chain) != MembershipDigest(file)) {
    return PermissionDenied(
        "the cluster file lists its enrolled nodes out of order: each must follow the nodes "
        "before it, as they were enrolled");
  }
  return first;
}

}  // namespace qv
