#include "node/pending.h"

#include "base/wire.h"
#include "node/messages.h"
#include "quorum/request.h"

namespace qv {

namespace {
constexpr std::string_view kPendingMagic = "QVPD";
constexpr uint32_t kPendingVersion = 1;
}  // namespace

Bytes EncodePending(const PendingEntry& e) {
  WireWriter w;
  w.Raw(AsBytes(kPendingMagic)).U32(kPendingVersion).Blob(e.request).I64(e.received);
  w.U32(static_cast<uint32_t>(e.approvals.size()));
  for (const auto& a : e.approvals) w.Blob(a);
  return w.Take();
}

Result<PendingEntry> DecodePending(ByteSpan in) {
  WireReader r(in);
  QV_RETURN_IF_ERROR(r.ExpectMagic(kPendingMagic, "pending request"));
  QV_ASSIGN_OR_RETURN(uint32_t version, r.U32());
  if (version != kPendingVersion) {
    return InvalidArgument("pending request version " + std::to_string(version));
  }
  PendingEntry e;
  QV_ASSIGN_OR_RETURN(e.request, r.Blob(1 << 16));
  QV_ASSIGN_OR_RETURN(e.received, r.I64());
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > kMaxApprovals) return InvalidArgument("more than 64 approvals");
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(Bytes a, r.Blob(1 << 16));
    e.approvals.push_back(std::move(a));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return e;
}

Bytes EncodePendingList(const std::vector<PendingEntry>& entries) {
  WireWriter w;
  w.U32(static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) w.Blob(EncodePending(e));
  return w.Take();
}

Result<std::vector<PendingEntry>> DecodePendingList(ByteSpan in) {
  WireReader r(in);
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n > kMaxPendingList) return InvalidArgument("more than 256 pending requests in one answer");
  std::vector<PendingEntry> out;
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(Bytes b, r.Blob(kMaxPayload));
    QV_ASSIGN_OR_RETURN(PendingEntry e, DecodePending(b));
    out.push_back(std::move(e));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

}  // namespace qv
