// libFuzzer target: the request/response parser on authenticated but
// possibly hostile bytes. Any input either fails cleanly or decodes to a
// message that re-encodes and decodes to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "node/messages.h"

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
  return 0;
}
