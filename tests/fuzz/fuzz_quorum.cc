// libFuzzer target: quorum requests, approvals and certificates, and the
// audit-log wire forms, from untrusted bytes. Parsing must never crash, and
// whatever parses must re-encode to bytes that parse to the same record.
#include <cstddef>
#include <cstdint>

#include "node/audit_log.h"
#include "quorum/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qv::ByteSpan in(data, size);
  if (auto r = qv::SignedRequest::Parse(in); r.ok()) {
    auto again = qv::SignedRequest::Parse(r->encoded());
    if (!again.ok() || again->id() != r->id()) __builtin_trap();
  }
  if (auto a = qv::Approval::Parse(in); a.ok()) {
    auto again = qv::Approval::Parse(a->Encode());
    if (!again.ok() || again->CanonicalBody() != a->CanonicalBody()) __builtin_trap();
    (void)a->VerifySignature();
  }
  if (auto c = qv::Certificate::Parse(in); c.ok()) {
    if (!qv::Certificate::Parse(c->Encode()).ok()) __builtin_trap();
  }
  (void)qv::DecodeEntries(in);
  (void)qv::DecodeCheckpoints(in);
  (void)qv::DecodeWitnessRecords(in);
  return 0;
}
