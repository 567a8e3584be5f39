// Restore requests kept by a node for the ceremony through the cluster
// (issue 16): a requester submits a signed request, custodians list what
// waits for them and post approvals, the requester collects them. Nodes
// never trust a pending request more than a file: each verifies it as a
// release would (quorum/verify.h), and the release still verifies the
// whole certificate.
//
// Wire form of one entry (base/wire.h, canonical):
//   "QVPD" | u32 version 1 | blob(signed request) | i64 received |
//   u32 count | count x blob(approval)
// A list is u32 count | count x blob(entry). Decoding is bounded: at most
// kMaxPendingList entries and kMaxApprovals approvals each; values only.
#ifndef QV_NODE_PENDING_H_
#define QV_NODE_PENDING_H_

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

inline constexpr size_t kMaxPendingList = 256;             // entries per list answer
inline constexpr size_t kMaxPendingRequests = 1024;        // kept by a node at once
inline constexpr size_t kMaxPendingListBytes = 16u << 20;  // one list answer, about

struct PendingEntry {
  Bytes request;                 // the signed request
  int64_t received = 0;          // when this node first took it (unix seconds)
  std::vector<Bytes> approvals;  // approvals and denials posted to this node
};

Bytes EncodePending(const PendingEntry& entry);
Result<PendingEntry> DecodePending(ByteSpan encoded);
Bytes EncodePendingList(const std::vector<PendingEntry>& entries);
Result<std::vector<PendingEntry>> DecodePendingList(ByteSpan encoded);

}  // namespace qv

#endif  // QV_NODE_PENDING_H_
