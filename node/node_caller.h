// The transport boundary to a node: one request in, one response out. A
// caller is a network connection (node/node_client.h) or, in tests and sim/,
// a NodeService in the same process (InProcessCaller). Used by the
// coordinator, requesters, auditors, and nodes witnessing each other.
#ifndef QV_NODE_NODE_CALLER_H_
#define QV_NODE_NODE_CALLER_H_

#include <mutex>
#include <string>

#include "node/messages.h"
#include "node/node_service.h"

namespace qv {

// Sends one request and waits for its response. Implementations serialize
// concurrent calls. A transport failure is a non-OK Result; a node's refusal
// is an OK Result whose Response carries the error (see CallChecked).
class NodeCaller {
 public:
  virtual ~NodeCaller() = default;
  virtual const std::string& name() const = 0;
  virtual Result<Response> Call(Request request) = 0;
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
