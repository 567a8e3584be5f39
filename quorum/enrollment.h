// Enrolling a node key in the cluster (issue 15, node replacement).
//
// A node's peers trust only the keys the cluster file pins. A new node joins
// through the same ceremony as a restore: a requester signs a request for
// operation "enroll" naming the node (id, site, address, key), and a quorum
// of the cluster file's custodians approve it. Every node verifies the
// certificate itself before it pins the new key, and keeps it.
//
// The request binds the membership it amends: its manifest_hash field holds
// MembershipDigest(cluster) (name, coordinator, every node's id, site and
// key; addresses are not part of it, since keys are pinned), its backup_id
// is zero, backup_name is the node id and destination is
// EnrollmentText(node). A certificate therefore applies once, to one
// membership, in one cluster; enrollments form a chain like manifest
// revisions.
//
// The cluster file carries each certificate ([[enrollments]]) beside the
// node it enrolled, so a node started later checks the same chain
// (CheckEnrollments) without trusting whoever edited the file. Pure
// functions: no clock, storage or network inside.
#ifndef QV_QUORUM_ENROLLMENT_H_
#define QV_QUORUM_ENROLLMENT_H_

#include <string>
#include <vector>

#include "configs/cluster_config.h"
#include "crypto/sha256.h"
#include "quorum/request.h"
#include "quorum/verify.h"

namespace qv {

inline constexpr std::string_view kMembershipDomain = "quorumvault/membership/v1";

// SHA-256 over kMembershipDomain | name | coordinator | u32 count | (id,
// site, key) per node, in file order (base/wire.h encoding).
Digest MembershipDigest(const ClusterConfig& cluster);

// "node ID site SITE at HOST:PORT key qvpk1..." and back (strict).
std::string EnrollmentText(const NodeEntry& node);
Result<NodeEntry> ParseEnrollmentText(std::string_view text);

// The unsigned request enrolling `node` into `cluster`.
QuorumRequest EnrollmentRequest(const ClusterConfig& cluster, const NodeEntry& node,
                                const Principal& requester, std::string purpose,
                                int64_t created_unix, int64_t expires_unix);

// The node the request enrolls, if the request is a well-formed enrollment
// into `cluster` (operation, zero backup id, membership digest, node id,
// a node that fits the cluster: new id, key and address, a listed site).
Result<NodeEntry> CheckEnrollmentRequest(const SignedRequest& request,
                                         const ClusterConfig& cluster);

// The whole certificate against `cluster`: the request as above, its
// requester and times (at in.now; in.requesters is ignored: the cluster's
// are used), and a quorum of the cluster's custodians (cluster.quorum),
// none denying. A cluster without custodians enrolls nothing. Refusals are
// kPermissionDenied with a reason.
Result<Verdict> VerifyEnrollment(const Certificate& certificate, const ClusterConfig& cluster,
                                 const VerifyInput& in,
                                 std::vector<ApprovalCheck>* checks = nullptr);

// `cluster` with the node `certificate` enrolls appended, after
// VerifyEnrollment with the clock set to the request's expiry: a
// certificate that was valid when approved stays valid in the chain.
Result<ClusterConfig> ApplyEnrollment(const ClusterConfig& cluster, ByteSpan certificate);

// A loaded cluster file's enrollments re-verified in order: the nodes they
// name are taken out to give the first membership, then each certificate
// must enroll, into the membership so far, the node the file lists under
// its id (same site and key; the address may have moved). Returns the
// first membership's digest, which a node compares with the one it
// recorded when it first started.
Result<Digest> CheckEnrollments(const ClusterConfig& cluster);

}  // namespace qv

#endif  // QV_QUORUM_ENROLLMENT_H_
