#include "quorum/request.h"

#include <algorithm>

#include "base/text.h"
#include "base/wire.h"
#include "crypto/kdf.h"

namespace qv {

namespace {

constexpr std::string_view kRequestMagic = "QVRQ";
constexpr std::string_view kApprovalMagic = "QVAP";
constexpr std::string_view kCertificateMagic = "QVQC";
constexpr size_t kMaxRequestBytes = 8192;
constexpr size_t kMaxApprovalBytes = 4096;

Result<QuorumRequest> ParseRequestBody(WireReader& r) {
  QuorumRequest q;
  QV_ASSIGN_OR_RETURN(uint32_t version, r.U32());
  if (version != QuorumRequest::kVersion) {
    return InvalidArgument("request format version " + std::to_string(version) +
                           " is not supported");
  }
  QV_ASSIGN_OR_RETURN(q.operation, r.Str(32));
  QV_ASSIGN_OR_RETURN(q.backup_id, r.Fixed<16>());
  QV_ASSIGN_OR_RETURN(q.backup_name, r.Str(kMaxLabel));
  QV_ASSIGN_OR_RETURN(q.manifest_hash, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(q.requester_id, r.Str(128));
  QV_ASSIGN_OR_RETURN(q.requester_key, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(q.reply_key, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(q.purpose, r.Str(kMaxPurpose));
  QV_ASSIGN_OR_RETURN(q.destination, r.Str(kMaxLabel));
  QV_ASSIGN_OR_RETURN(q.created_unix, r.I64());
  QV_ASSIGN_OR_RETURN(q.expires_unix, r.I64());
  QV_ASSIGN_OR_RETURN(q.nonce, r.Fixed<16>());
  return q;
}

}  // namespace

std::string RequestIdToText(const RequestId& id) { return HexEncode(id); }

Bytes QuorumRequest::CanonicalBody() const {
  WireWriter w;
  w.U32(kVersion).Str(operation).Fixed(backup_id).Str(backup_name).Fixed(manifest_hash);
  w.Str(requester_id);
  w.Fixed(requester_key).Fixed(reply_key).Str(purpose).Str(destination);
  w.I64(created_unix).I64(expires_unix).Fixed(nonce);
  return w.Take();
}

Status QuorumRequest::Validate() const {
  auto bad = [](const std::string& f, const std::string& why) {
    return InvalidArgument("request field " + f + ": " + why);
  };
  // Every field a custodian reads must show exactly what was signed.
  for (const auto& [name, text] :
       {std::pair<const char*, const std::string*>{"operation", &operation},
        {"backup_name", &backup_name},
        {"requester", &requester_id},
        {"purpose", &purpose},
        {"destination", &destination}}) {
    if (Status st = CheckDisplayText(name, *text); !st.ok()) {
      return InvalidArgument("request field " + st.message());
    }
  }
  const auto& ops = AllQuorumOps();
  if (operation != kOpEnroll && std::find(ops.begin(), ops.end(), operation) == ops.end()) {
    return bad("operation", "unknown operation \"" + operation + "\"");
  }
  if (requester_id.empty() || requester_id.size() > 128) return bad("requester", "1..128 bytes");
  if (purpose.empty()) return bad("purpose", "must say why");
  if (purpose.size() > kMaxPurpose) return bad("purpose", "over 1024 bytes");
  if (destination.size() > kMaxLabel) return bad("destination", "over 256 bytes");
  if (backup_name.size() > kMaxLabel) return bad("backup_name", "over 256 bytes");
  for (const auto& [name, t] :
       {std::pair<const char*, int64_t>{"created", created_unix}, {"expires", expires_unix}}) {
    if (t < kMinPlausibleUnix || t > kMaxPlausibleUnix) {
      return bad(name, std::to_string(t) + " is outside 2000..2200");
    }
  }
  if (expires_unix <= created_unix) return bad("expires", "not after creation");
  return Status::Ok();
}

Status Approval::Validate() const {
  if (custodian_id.empty() || custodian_id.size() > 128) {
    return InvalidArgument("approval custodian id: 1..128 bytes");
  }
  if (note.size() > kMaxNote) {
    return InvalidArgument("approval note: " + std::to_string(note.size()) + " bytes, at most " +
                           std::to_string(kMaxNote));
  }
  for (const auto& [name, text] :
       {std::pair<const char*, const std::string*>{"custodian id", &custodian_id},
        {"note", &note}}) {
    if (Status st = CheckDisplayText(name, *text); !st.ok()) {
      return InvalidArgument("approval " + st.message());
    }
  }
  if (signed_unix < kMinPlausibleUnix || signed_unix > kMaxPlausibleUnix) {
    return InvalidArgument("approval time " + std::to_string(signed_unix) +
                           " is outside 2000..2200");
  }
  return Status::Ok();
}

Result<SignedRequest> SignedRequest::Sign(const QuorumRequest& request, const Signer& key) {
  QV_RETURN_IF_ERROR(request.Validate());
  if (key.public_key() != request.requester_key) {
    return InvalidArgument("the signing key is not the request's requester key");
  }
  SignedRequest s;
  s.request_ = request;
  const Bytes body = request.CanonicalBody();
  QV_ASSIGN_OR_RETURN(const Signature sig, key.SignMessage(ContextMessage(kRequestContext, body)));
  WireWriter w;
  w.Raw(AsBytes(kRequestMagic)).Raw(body).Fixed(sig);
  s.encoded_ = w.Take();
  s.id_ = DomainHash(kRequestIdDomain, body);
  return s;
}

Result<SignedRequest> SignedRequest::Parse(ByteSpan encoded) {
  if (encoded.size() > kMaxRequestBytes) return InvalidArgument("request over 8 KiB");
  WireReader r(encoded);
  QV_RETURN_IF_ERROR(r.ExpectMagic(kRequestMagic, "request"));
  const size_t body_start = r.position();
  QV_ASSIGN_OR_RETURN(QuorumRequest q, ParseRequestBody(r));
  const ByteSpan body = encoded.subspan(body_start, r.position() - body_start);
  QV_ASSIGN_OR_RETURN(Signature sig, r.Fixed<kSignatureSize>());
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  QV_RETURN_IF_ERROR(q.Validate());
  Status st = qv::VerifySignature(q.requester_key, ContextMessage(kRequestContext, body), sig);
  if (!st.ok()) {
    return Status(StatusCode::kPermissionDenied,
                  "request signature does not verify under requester " + q.requester_id + "'s key");
  }
  SignedRequest s;
  s.request_ = std::move(q);
  s.encoded_.assign(encoded.begin(), encoded.end());
  s.id_ = DomainHash(kRequestIdDomain, body);
  return s;
}

Bytes Approval::CanonicalBody() const {
  WireWriter w;
  w.U32(kVersion).Fixed(request_id).U8(approve ? 1 : 0).Str(custodian_id).Fixed(custodian_key);
  w.I64(signed_unix).Str(note);
  return w.Take();
}

Status Approval::VerifySignature() const {
  return qv::VerifySignature(custodian_key, ContextMessage(kApprovalContext, CanonicalBody()),
                             signature);
}

Bytes Approval::Encode() const {
  WireWriter w;
  w.Raw(AsBytes(kApprovalMagic)).Raw(CanonicalBody()).Fixed(signature);
  return w.Take();
}

Result<Approval> Approval::Parse(ByteSpan encoded) {
  if (encoded.size() > kMaxApprovalBytes) return InvalidArgument("approval over 4 KiB");
  WireReader r(encoded);
  QV_RETURN_IF_ERROR(r.ExpectMagic(kApprovalMagic, "approval"));
  Approval a;
  QV_ASSIGN_OR_RETURN(uint32_t version, r.U32());
  if (version != kVersion) {
    return InvalidArgument("approval format version " + std::to_string(version) +
                           " is not supported");
  }
  QV_ASSIGN_OR_RETURN(a.request_id, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(uint8_t decision, r.U8());
  if (decision > 1) return InvalidArgument("approval decision is neither approve nor deny");
  a.approve = decision == 1;
  QV_ASSIGN_OR_RETURN(a.custodian_id, r.Str(128));
  QV_ASSIGN_OR_RETURN(a.custodian_key, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(a.signed_unix, r.I64());
  QV_ASSIGN_OR_RETURN(a.note, r.Str(kMaxNote));
  QV_ASSIGN_OR_RETURN(a.signature, r.Fixed<kSignatureSize>());
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  QV_RETURN_IF_ERROR(a.Validate());
  return a;
}

Result<Approval> Approval::Sign(const SignedRequest& request, const Signer& key,
                                std::string custodian_id, bool approve, std::string note,
                                int64_t now) {
  Approval a;
  a.request_id = request.id();
  a.approve = approve;
  a.custodian_id = std::move(custodian_id);
  a.custodian_key = key.public_key();
  a.signed_unix = now;
  a.note = std::move(note);
  QV_RETURN_IF_ERROR(a.Validate());  // never sign what a node would refuse to parse
  QV_ASSIGN_OR_RETURN(a.signature,
                      key.SignMessage(ContextMessage(kApprovalContext, a.CanonicalBody())));
  return a;
}

Bytes Certificate::Encode() const {
  WireWriter w;
  w.Raw(AsBytes(kCertificateMagic)).Blob(request.encoded()).U32(approvals.size());
  for (const auto& a : approvals) w.Blob(a.Encode());
  return w.Take();
}

Result<Certificate> Certificate::Parse(ByteSpan encoded) {
  WireReader r(encoded);
  QV_RETURN_IF_ERROR(r.ExpectMagic(kCertificateMagic, "certificate"));
  QV_ASSIGN_OR_RETURN(Bytes req, r.Blob(kMaxRequestBytes));
  QV_ASSIGN_OR_RETURN(SignedRequest sr, SignedRequest::Parse(req));
  QV_ASSIGN_OR_RETURN(uint32_t count, r.U32());
  if (count > kMaxApprovals) {
    return InvalidArgument("certificate carries " + std::to_string(count) +
                           " approvals (at most 64)");
  }
  Certificate c{std::move(sr), {}};
  for (uint32_t i = 0; i < count; ++i) {
    QV_ASSIGN_OR_RETURN(Bytes a, r.Blob(kMaxApprovalBytes));
    auto parsed = Approval::Parse(a);
    if (!parsed.ok()) return parsed.status().WithContext("approval " + std::to_string(i + 1));
    c.approvals.push_back(std::move(parsed).value());
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return c;
}

}  // namespace qv
