// The node daemon's network face: an Asio server on one io_context run by a
// pool of threads (one per core by default). Each connection is one session
// coroutine: a Noise XX handshake under a deadline, then the peer's proven
// key is looked up among the pinned keys and an unknown peer is dropped
// before any request is read; then request/response messages, each read and
// write under a deadline and the whole connection under an idle timeout.
// A malformed, oversized, out-of-order or unauthenticated frame closes that
// connection only. Run() returns after Stop() or SIGINT/SIGTERM, once every
// session has been closed.
#ifndef QV_NODE_SERVER_H_
#define QV_NODE_SERVER_H_

#include <chrono>
#include <memory>
#include <string>

#include "crypto/identity.h"
#include "node/node_service.h"

namespace qv {

inline constexpr std::string_view kChannelPrologue = "quorumvault/1";

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (see NodeServer::port)
  int threads = 0;    // 0: one per core
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds io_timeout{30000};  // a whole message, from its first byte
  std::chrono::milliseconds idle_timeout{120000};
  size_t max_message = 32u << 20;
  // Connections still in (or before) their handshake: past either cap a
  // new connection is closed at once.
  size_t max_unauthenticated = 512;
  size_t max_unauthenticated_per_address = 64;
};

class NodeServer {
 public:
  // Binds now, so a port conflict is reported here.
  static Result<std::unique_ptr<NodeServer>> New(NodeService* service, const SigningKey* identity,
                                                 const ServerOptions& options);
  ~NodeServer();
  uint16_t port() const;
  // Serves until Stop() or, with handle_signals, SIGINT/SIGTERM.
  Status Run(bool handle_signals);
  // Thread-safe; may be called from any thread or a signal-driven handler.
  void Stop();

  struct Impl;  // implementation detail, public only for the .cc's helpers

 private:
  explicit NodeServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qv

#endif  // QV_NODE_SERVER_H_
