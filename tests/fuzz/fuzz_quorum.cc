// libFuzzer target: quorum requests, approvals, certificates, enrollment text, and the
// audit-log wire forms, from untrusted bytes. Parsing must never crash, and
// whatever parses must re-encode to bytes that parse to the same record.
// The display-text rules (base/text.h) on the same bytes: what Printable
// returns is always acceptable text, and acceptable text without a
// backslash is printed unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/text.h"
#include "node/audit_log.h"
#include "quorum/enrollment.h"
#include "quorum/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qv::ByteSpan in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string shown = qv::Printable(text);
  if (!qv::CheckDisplayText("fuzz", shown).ok()) __builtin_trap();
  if (qv::CheckDisplayText("fuzz", text).ok() && text.find('\\') == std::string_view::npos &&
      shown != text) {
    __builtin_trap();
  }
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
  // An enrollment's node text has one spelling: what parses prints back
  // byte for byte.
  if (auto n = qv::ParseEnrollmentText(text); n.ok()) {
    if (qv::EnrollmentText(*n) != text) __builtin_trap();
  }
  (void)qv::DecodeEntries(in);
  (void)qv::DecodeCheckpoints(in);
  (void)qv::DecodeWitnessRecords(in);
  return 0;
}
