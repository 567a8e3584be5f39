// The transport boundary to a node: one request in, one response out. A
// caller is a network connection (node/node_client.h) or, in tests and sim/,
// a NodeService in the same process (InProcessCaller). Used by the
// coordinator, requesters, auditors, and nodes witnessing each other.
#ifndef QV_NODE_NODE_CALLER_H_
#define QV_NODE_NODE_CALLER_H_

#include <deque>
#include <mutex>
#include <string>

#include "node/messages.h"
#include "node/node_service.h"

namespace qv {

// Sends one request and waits for its response. Implementations serialize
// concurrent calls. A transport failure is a non-OK Result; a node's refusal
// is an OK Result whose Response carries the error (see CallChecked).
//
// Pipelining: Send queues a request without waiting, Receive returns the
// response to the oldest request sent and not yet received. One thread at a
// time may pipeline on a caller; a Call made meanwhile waits until every
// pipelined response has been received. A connection overrides both so the
// node works on the next request while the last response is still being
// read; the defaults here run each request through Call when it is received,
// so wrappers that override only Call (tests, sim/) see every request.
class NodeCaller {
 public:
  virtual ~NodeCaller() = default;
  virtual const std::string& name() const = 0;
  virtual Result<Response> Call(Request request) = 0;
  virtual Status Send(Request request);
  virtual Result<Response> Receive();

 private:
  std::mutex queued_mu_;
  std::deque<Request> queued_;
};

// The response's own status folded in, prefixed with the node's name.
Result<Response> CallChecked(NodeCaller& caller, Request request);

// Calls a NodeService directly, with the given peer identity. One caller is
// one session (like one connection).
class InProcessCaller : public NodeCaller {
 public:
  InProcessCaller(NodeService* service, PeerInfo as)
      : service_(service), name_(service->node_id()), session_(std::move(as)) {}
  const std::string& name() const override { return name_; }
  Result<Response> Call(Request request) override;

 private:
  NodeService* service_;
  std::string name_;
  std::mutex mu_;
  NodeService::Session session_;
};

}  // namespace qv

#endif  // QV_NODE_NODE_CALLER_H_
