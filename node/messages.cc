#include "node/messages.h"

#include "base/text.h"
#include "base/wire.h"

namespace qv {

namespace {

constexpr size_t kMaxHeaderField = 4096;
constexpr uint32_t kMaxIds = 1u << 20;

// Headers on the project's canonical codec (base/wire.h), so peers at
// different releases parse the same bytes the same way; the exact bytes are
// pinned by messages_test.
void WriteHeader(WireWriter& w, const Request& r) {
  w.U32(r.version).U8(static_cast<uint8_t>(r.op)).Fixed(r.backup_id).U32(r.fragment);
  w.U64(r.a).U64(r.b).Blob(r.payload2);
}

Status ReadHeader(WireReader& in, Request& r) {
  QV_ASSIGN_OR_RETURN(r.version, in.U32());
  QV_ASSIGN_OR_RETURN(uint8_t op, in.U8());
  r.op = static_cast<Op>(op);
  QV_ASSIGN_OR_RETURN(r.backup_id, in.Fixed<16>());
  QV_ASSIGN_OR_RETURN(r.fragment, in.U32());
  QV_ASSIGN_OR_RETURN(r.a, in.U64());
  QV_ASSIGN_OR_RETURN(r.b, in.U64());
  QV_ASSIGN_OR_RETURN(r.payload2, in.Blob(kMaxHeaderField));
  return Status::Ok();
}

void WriteHeader(WireWriter& w, const Response& r) {
  w.U8(r.code).Str(r.message).U32(static_cast<uint32_t>(r.ids.size()));
  for (const auto& id : r.ids) w.Fixed(id);
  w.Str(r.node_id);
}

Status ReadHeader(WireReader& in, Response& r) {
  QV_ASSIGN_OR_RETURN(r.code, in.U8());
  QV_ASSIGN_OR_RETURN(r.message, in.Str(kMaxHeaderField));
  QV_ASSIGN_OR_RETURN(uint32_t n, in.U32());
  if (n > kMaxIds || n > in.remaining() / 16) return InvalidArgument("id list over limit");
  r.ids.resize(n);
  for (auto& id : r.ids) {
    QV_ASSIGN_OR_RETURN(id, in.Fixed<16>());
  }
  QV_ASSIGN_OR_RETURN(r.node_id, in.Str(kMaxHeaderField));
  return Status::Ok();
}

// Splits payload | header | u32 header length; parses the header into `out`
// and leaves the payload length in *payload_len.
template <class T>
Status DecodeHeader(ByteSpan msg, T& out, size_t* payload_len) {
  if (msg.size() < 4) return InvalidArgument("message shorter than its trailer");
  const uint8_t* t = msg.data() + msg.size() - 4;
  const uint32_t header_len =
      uint32_t{t[0]} << 24 | uint32_t{t[1]} << 16 | uint32_t{t[2]} << 8 | t[3];
  if (header_len > msg.size() - 4 || header_len > (1u << 20)) {
    return InvalidArgument("message header length out of range");
  }
  *payload_len = msg.size() - 4 - header_len;
  if (*payload_len > kMaxPayload) return InvalidArgument("payload over the limit");
  WireReader in(msg.subspan(*payload_len, header_len));
  Status st = ReadHeader(in, out);
  if (!st.ok()) return st.WithContext("malformed message");
  if (in.remaining() != 0) return InvalidArgument("message header has trailing bytes");
  return Status::Ok();
}

// Appends the header and its length to `out`, which already holds the payload.
template <class T>
Result<Bytes> EncodeAfterPayload(Bytes out, const T& header) {
  if (out.size() > kMaxPayload) return InvalidArgument("payload over the limit");
  WireWriter w;
  WriteHeader(w, header);
  const Bytes& h = w.bytes();
  if (h.size() > (1u << 20)) return InvalidArgument("message header over the limit");
  out.reserve(out.size() + h.size() + 4);
  AppendBytes(out, h);
  const uint32_t header_len = static_cast<uint32_t>(h.size());
  const uint8_t t[4] = {uint8_t(header_len >> 24), uint8_t(header_len >> 16),
                        uint8_t(header_len >> 8), uint8_t(header_len)};
  out.insert(out.end(), t, t + 4);
  return out;
}

}  // namespace

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kHealth:
      return "health";
    case Op::kBeginFragment:
      return "begin-fragment";
    case Op::kFragmentData:
      return "fragment-data";
    case Op::kPrepare:
      return "prepare";
    case Op::kPublish:
      return "publish";
    case Op::kAbort:
      return "abort";
    case Op::kGetManifest:
      return "get-manifest";
    case Op::kListBackups:
      return "list-backups";
    case Op::kGetLeaves:
      return "get-leaves";
    case Op::kFetchUnits:
      return "fetch-units";
    case Op::kRelease:
      return "release";
    case Op::kGetAudit:
      return "get-audit";
    case Op::kGetCheckpoints:
      return "get-checkpoints";
    case Op::kReleaseReceipt:
      return "release-receipt";
    case Op::kGetCommit:
      return "get-commit";
    case Op::kManifestData:
      return "manifest-data";
    case Op::kGetWitnessed:
      return "get-witnessed";
    case Op::kPostDenial:
      return "post-denial";
    case Op::kGetManifestHash:
      return "get-manifest-hash";
    case Op::kScrub:
      return "scrub";
    case Op::kRepairOpen:
      return "repair-open";
    case Op::kShareRecoverStart:
      return "share-recover-start";
    case Op::kShareRecoverDeal:
      return "share-recover-deal";
    case Op::kShareRecoverForward:
      return "share-recover-forward";
    case Op::kShareSummand:
      return "share-summand";
    case Op::kSharePartial:
      return "share-partial";
    case Op::kRepairInstall:
      return "repair-install";
    case Op::kGetManifestHistory:
      return "get-manifest-history";
    case Op::kScrubCoverage:
      return "scrub-coverage";
    case Op::kEnroll:
      return "enroll";
    case Op::kSubmitRequest:
      return "submit-request";
    case Op::kListPending:
      return "list-pending";
    case Op::kPostApproval:
      return "post-approval";
  }
  return "unknown";
}

Status Response::ToStatus() const {
  if (code == 0) return Status::Ok();
  // A peer's words: escaped where they enter, so no later message that
  // quotes them can carry a control sequence to a terminal or a log.
  return Status(static_cast<StatusCode>(code), Printable(message));
}

Response Response::FromStatus(const Status& s) {
  Response r;
  r.code = static_cast<uint8_t>(s.code());
  r.message = s.message();
  return r;
}

Result<Bytes> EncodeRequest(Request&& r) {
  Bytes payload = std::move(r.payload);
  r.payload = Bytes();
  return EncodeAfterPayload(std::move(payload), r);
}

Result<Bytes> EncodeRequest(const Request& r) {
  Request copy = r;
  return EncodeRequest(std::move(copy));
}

Result<Request> DecodeRequest(Bytes&& message) {
  Request r;
  size_t payload_len = 0;
  QV_RETURN_IF_ERROR(DecodeHeader(message, r, &payload_len));
  if (r.version != kProtocolVersion) {
    return InvalidArgument("protocol version " + std::to_string(r.version) + " not supported");
  }
  const auto op = static_cast<uint8_t>(r.op);
  if (op < static_cast<uint8_t>(Op::kHealth) || op > static_cast<uint8_t>(Op::kPostApproval)) {
    return InvalidArgument("unknown request " + std::to_string(op));
  }
  message.resize(payload_len);  // the buffer becomes the payload, in place
  r.payload = std::move(message);
  return r;
}

Result<Request> DecodeRequest(ByteSpan message) {
  return DecodeRequest(Bytes(message.begin(), message.end()));
}

Result<Bytes> EncodeResponse(Response&& r) {
  Bytes payload = std::move(r.payload);
  r.payload = Bytes();
  return EncodeAfterPayload(std::move(payload), r);
}

Result<Bytes> EncodeResponse(const Response& r) {
  Response copy = r;
  return EncodeResponse(std::move(copy));
}

Result<Response> DecodeResponse(Bytes&& message) {
  Response r;
  size_t payload_len = 0;
  QV_RETURN_IF_ERROR(DecodeHeader(message, r, &payload_len));
  if (r.code > static_cast<uint8_t>(StatusCode::kInternal)) {
    return InvalidArgument("unknown status code in response");
  }
  message.resize(payload_len);
  r.payload = std::move(message);
  return r;
}

Result<Response> DecodeResponse(ByteSpan message) {
  return DecodeResponse(Bytes(message.begin(), message.end()));
}

Bytes EncodeReceipt(const ReleaseReceipt& receipt) {
  WireWriter w;
  w.Fixed(receipt.request_id).U32(static_cast<uint32_t>(receipt.released_by.size()));
  for (const auto& id : receipt.released_by) w.Str(id);
  return w.Take();
}

Result<ReleaseReceipt> DecodeReceipt(ByteSpan data) {
  WireReader r(data);
  ReleaseReceipt out;
  QV_ASSIGN_OR_RETURN(out.request_id, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n == 0 || n > 64) return InvalidArgument("receipt names " + std::to_string(n) + " nodes");
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(std::string id, r.Str(128));
    out.released_by.push_back(std::move(id));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

}  // namespace qv
