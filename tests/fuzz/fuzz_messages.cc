// libFuzzer target: the request/response parser, and the payloads a node
// decodes from a peer (scrub challenges and answers, scrub coverage, share
// recovery starts and values, repair plans), on authenticated but possibly
// hostile bytes. Any input either fails cleanly or decodes to a value that
// re-encodes and decodes to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "manifest/repair_plan.h"
#include "node/messages.h"
#include "node/scrub_wire.h"
#include "node/share_recovery.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qv::ByteSpan in(data, size);
  if (auto req = qv::DecodeRequest(in); req.ok()) {
    auto again = qv::DecodeRequest(*qv::EncodeRequest(*req));
    if (!again.ok() || again->payload != req->payload || again->a != req->a ||
        again->op != req->op || again->backup_id != req->backup_id) {
      std::abort();
    }
  }
  if (auto resp = qv::DecodeResponse(in); resp.ok()) {
    auto again = qv::DecodeResponse(*qv::EncodeResponse(*resp));
    if (!again.ok() || again->payload != resp->payload || again->message != resp->message ||
        again->ids != resp->ids) {
      std::abort();
    }
  }
  if (auto c = qv::DecodeScrubChallenge(in); c.ok()) {
    auto again = qv::DecodeScrubChallenge(qv::EncodeScrubChallenge(*c));
    if (!again.ok() || again->items != c->items || again->nonce != c->nonce) std::abort();
  }
  if (auto a = qv::DecodeScrubAnswer(in); a.ok()) {
    auto again = qv::DecodeScrubAnswer(qv::EncodeScrubAnswer(*a));
    if (!again.ok() || again->items.size() != a->items.size()) std::abort();
  }
  if (auto c = qv::DecodeCoverage(in); c.ok()) {
    auto again = qv::DecodeCoverage(qv::EncodeCoverage(c->first, c->second));
    if (!again.ok() || again->first.cursor != c->first.cursor) std::abort();
  }
  if (auto p = qv::DecodeRecoveryStart(in); p.ok()) {
    auto again = qv::DecodeRecoveryStart(qv::EncodeRecoveryStart(*p));
    if (!again.ok() || again->helpers != p->helpers || again->target != p->target) std::abort();
  }
  (void)qv::DecodeRecoveryValue(in);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto plan = qv::ParseRepairPlan(text); plan.ok()) {
    if (qv::FormatRepairPlan(*plan) != text) std::abort();
  }
  return 0;
}
