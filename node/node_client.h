// A connection to one node (from the coordinator, a requester, an auditor or
// another node): TCP with deadlines on
// connect, read and write, the Noise XX channel, and a pin check: the node
// must prove the key the cluster file lists for it, or the connection is
// dropped before any request is sent. Calls are serialized by a mutex, and
// pipelined requests (Send/Receive) share the connection in order; after a
// transport error the connection is closed and later calls fail fast.
#ifndef QV_NODE_NODE_CLIENT_H_
#define QV_NODE_NODE_CLIENT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "configs/cluster_config.h"
#include "crypto/channel.h"
#include "node/node_caller.h"

namespace qv {

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds io_timeout{30000};
  // A descriptor (an eventfd, say) that becomes readable to cancel: every
  // read in progress or to come, the handshake's included, then fails at
  // once. Not owned. For shutting down without waiting on a peer.
  int cancel_fd = -1;
};

class NodeClient : public NodeCaller {
 public:
  static Result<std::unique_ptr<NodeClient>> Connect(const NodeEntry& node,
                                                     const SigningKey& identity,
                                                     const ClientOptions& options = {});
  ~NodeClient() override;
  const std::string& name() const override { return name_; }
  Result<Response> Call(Request request) override;
  Status Send(Request request) override;
  Result<Response> Receive() override;
  // Every read after `deadline` fails, however the peer paces its bytes: a
  // bound on whole exchanges, not just on each read.
  void SetDeadline(std::chrono::steady_clock::time_point deadline);

 private:
  NodeClient() = default;
  // With mu_ held: a request out, or the next response in; a transport
  // error breaks the connection.
  Status SendLocked(Request request);
  Result<Response> ReceiveLocked();
  void Break();  // with mu_ held: later calls fail fast
  Status SendAll(ByteSpan data);
  Status FillFrame();
  std::string name_;
  int fd_ = -1;
  std::unique_ptr<Channel> channel_;
  FrameDecoder decoder_;
  static constexpr size_t kRecvSize = 256 * 1024;
  std::mutex mu_;
  std::condition_variable idle_;  // signalled when outstanding_ drops to 0
  uint32_t outstanding_ = 0;      // pipelined requests not yet received
  uint32_t calls_waiting_ = 0;    // Calls waiting for outstanding_ == 0
  bool broken_ = false;
  std::atomic<int64_t> deadline_ns_{0};  // steady clock; 0: none
  int cancel_fd_ = -1;
  int64_t io_timeout_ms_ = 30000;
};

}  // namespace qv

#endif  // QV_NODE_NODE_CLIENT_H_
