#include "node/node_caller.h"

namespace qv {

Result<Response> CallChecked(NodeCaller& caller, Request request) {
  auto r = caller.Call(std::move(request));
  if (!r.ok()) return r.status().WithContext(caller.name());
  Status s = r->ToStatus();
  if (!s.ok()) return s.WithContext(caller.name());
  return r;
}

Status NodeCaller::Send(Request request) {
  std::lock_guard<std::mutex> lock(queued_mu_);
  queued_.push_back(std::move(request));
  return Status::Ok();
}

Result<Response> NodeCaller::Receive() {
  Request next;
  {
    std::lock_guard<std::mutex> lock(queued_mu_);
    if (queued_.empty()) return FailedPrecondition("receive with no request sent");
    next = std::move(queued_.front());
    queued_.pop_front();
  }
  return Call(std::move(next));
}

Result<Response> InProcessCaller::Call(Request request) {
  std::lock_guard<std::mutex> lock(mu_);
  // Through the codec, so in-process runs exercise the same parsing.
  QV_ASSIGN_OR_RETURN(Bytes wire, EncodeRequest(std::move(request)));
  QV_ASSIGN_OR_RETURN(Request parsed, DecodeRequest(std::move(wire)));
  Response resp = service_->Handle(session_, parsed);
  QV_ASSIGN_OR_RETURN(Bytes back, EncodeResponse(std::move(resp)));
  return DecodeResponse(std::move(back));
}

}  // namespace qv
