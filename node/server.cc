#include "node/server.h"

#include <sodium.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "crypto/channel.h"

namespace qv {

using asio::awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto kUse = asio::experimental::as_tuple(asio::use_awaitable);

struct NodeServer::Impl {
  NodeService* service;
  const SigningKey* identity;
  ServerOptions opt;
  std::atomic<bool> stopping{false};
  // Connections not yet authenticated, in all and by source address. They
  // cost memory before anyone is known, so both are capped; past a cap a
  // connection is closed as soon as it is accepted.
  std::mutex unauth_mu;
  size_t unauth_total = 0;
  std::map<std::string, size_t> unauth_by_address;
  // Last, so destroyed first: the io_context's destructor destroys the
  // sessions still pending (at shutdown), and their slots give their place
  // back under unauth_mu, which must still exist then (a use after free
  // that ASan caught at a node's stop during a flood).
  asio::io_context ctx;
  tcp::acceptor acceptor{ctx};
};

namespace {

// One unauthenticated connection's place under the caps: taken at accept,
// given back once the peer is identified or the connection ends.
class UnauthSlot {
 public:
  UnauthSlot(NodeServer::Impl* s, std::string address) : s_(s), address_(std::move(address)) {}
  ~UnauthSlot() { Release(); }
  UnauthSlot(const UnauthSlot&) = delete;
  UnauthSlot& operator=(const UnauthSlot&) = delete;
  // False (nothing taken, and the node's metrics count it) when a cap is
  // reached.
  bool Take() {
    bool per_address = false;
    {
      std::lock_guard<std::mutex> lock(s_->unauth_mu);
      size_t& mine = s_->unauth_by_address[address_];
      if (s_->unauth_total >= s_->opt.max_unauthenticated ||
          mine >= s_->opt.max_unauthenticated_per_address) {
        per_address = s_->unauth_total < s_->opt.max_unauthenticated;
        if (mine == 0) s_->unauth_by_address.erase(address_);
      } else {
        ++mine;
        ++s_->unauth_total;
        held_ = true;
        return true;
      }
    }
    s_->service->metrics().ConnectionCapped(per_address);
    return false;
  }
  void Release() {
    if (!held_) return;
    std::lock_guard<std::mutex> lock(s_->unauth_mu);
    if (--s_->unauth_by_address[address_] == 0) s_->unauth_by_address.erase(address_);
    --s_->unauth_total;
    held_ = false;
  }

 private:
  NodeServer::Impl* s_;
  std::string address_;
  bool held_ = false;
};

// One connection: handshake, pin check, then requests until close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(NodeServer::Impl* s, tcp::socket sock, std::unique_ptr<UnauthSlot> slot)
      : s_(s), sock_(std::move(sock)), timer_(sock_.get_executor()), slot_(std::move(slot)) {}

  awaitable<void> Run() {
    std::string peer_addr = "?";
    {
      asio::error_code ec;
      auto ep = sock_.remote_endpoint(ec);
      if (!ec) {
        peer_ip_ = ep.address().to_string();
        peer_addr = peer_ip_ + ":" + std::to_string(ep.port());
      }
    }
    Status st = co_await Serve();
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      s_->service->Log("peer=" + (peer_.name.empty() ? peer_addr : peer_.name) +
                       " event=disconnect reason=\"" + st.ToString() + "\"");
    }
    asio::error_code ignored;
    sock_.shutdown(tcp::socket::shutdown_both, ignored);
    sock_.close(ignored);
  }

 private:
  // kNotFound marks a clean close by the peer.
  awaitable<Status> Serve() {
    auto ch = Channel::New(false, *s_->identity, AsBytes(kChannelPrologue), s_->opt.max_message);
    if (!ch.ok()) co_return ch.status();
    channel_ = std::move(ch).value();
    // The whole handshake has one deadline, and its reads are small: an
    // unknown peer gets a few KiB of buffer, not the 1 MiB of a session.
    Deadline handshake{Clock::now() + s_->opt.handshake_timeout, {}};
    while (!channel_->established()) {
      Status got = co_await FillFrame(handshake, kHandshakeRecvSize);
      if (!got.ok()) {
        if (got.message() == "read timed out") {
          co_return Status(StatusCode::kPermissionDenied, "handshake timed out");
        }
        co_return got.WithContext("handshake");
      }
      auto ev = channel_->OnFrame(*decoder_.Peek());
      decoder_.Pop();
      if (!ev.ok()) co_return ev.status().WithContext("handshake");
      if (!ev->to_send.empty()) {
        Status w = co_await Write(ev->to_send);
        if (!w.ok()) co_return w;
      }
    }
    peer_ = s_->service->Identify(*channel_->remote_static());
    slot_->Release();  // authenticated (or about to be dropped): off the caps
    if (peer_.role == PeerRole::kUnknown) {
      s_->service->RefuseUnknownPeer(peer_ip_, peer_.name);  // logged and audited, rate-limited
      // The peer proved its key, so it may learn why it gets nothing: one
      // answer naming the problem, then the connection closes.
      Response no = Response::FromStatus(
          PermissionDenied("this key (" + peer_.name.substr(8) + "...) is not pinned in " +
                           s_->service->node_id() + "'s cluster file"));
      no.node_id = s_->service->node_id();
      auto bytes = EncodeResponse(std::move(no));
      if (bytes.ok()) {
        auto wire = channel_->Seal(*bytes);
        if (wire.ok()) (void)co_await Write(*wire);
      }
      co_return Status::Ok();
    }
    NodeService::Session session(peer_);
    while (!s_->stopping.load()) {
      // Idle until a message starts; from its first byte, the whole message
      // (every frame of it) must arrive within io_timeout, so a peer that
      // trickles bytes cannot hold the connection by resetting a read timer.
      Deadline message{Clock::now() + s_->opt.idle_timeout, s_->opt.io_timeout};
      Status got = co_await FillFrame(message, kRecvSize);
      if (!got.ok()) co_return got;
      auto ev = channel_->OnFrame(*decoder_.Peek());
      decoder_.Pop();
      if (!ev.ok()) co_return ev.status();
      if (!ev->message) continue;
      auto req = DecodeRequest(std::move(*ev->message));
      Response resp =
          req.ok() ? s_->service->Handle(session, *req) : Response::FromStatus(req.status());
      auto bytes = EncodeResponse(std::move(resp));
      if (!bytes.ok()) co_return bytes.status();
      auto wire = channel_->Seal(*bytes);
      if (!wire.ok()) co_return wire.status();
      session.Recycle(std::move(*bytes));
      Status w = co_await Write(*wire);
      if (!w.ok()) co_return w;
      if (!req.ok()) co_return req.status();  // a malformed request ends the connection
    }
    co_return Status::Ok();
  }

  using Clock = std::chrono::steady_clock;
  // When reading must be done: `at`, which a message's first byte moves to
  // that moment plus `budget` (if any), once.
  struct Deadline {
    Clock::time_point at;
    std::optional<std::chrono::milliseconds> budget;
  };

  // Waits until a whole frame is buffered; it is then decoder_.Peek().
  awaitable<Status> FillFrame(Deadline& deadline, size_t recv_size) {
    while (!decoder_.Peek()) {
      timer_.expires_at(deadline.at);
      MutableByteSpan space = decoder_.Prepare(recv_size);
      auto r = co_await (sock_.async_read_some(asio::buffer(space.data(), space.size()), kUse) ||
                         timer_.async_wait(kUse));
      if (r.index() == 1) co_return Status(StatusCode::kPermissionDenied, "read timed out");
      auto [ec, n] = std::get<0>(r);
      if (ec == asio::error::eof) co_return NotFound("peer closed the connection");
      if (ec) co_return IoError("read: " + ec.message());
      if (n > 0 && deadline.budget) {
        deadline.at = Clock::now() + *deadline.budget;
        deadline.budget.reset();
      }
      Status st = decoder_.Commit(n);
      if (!st.ok()) co_return st;
    }
    co_return Status::Ok();
  }

  awaitable<Status> Write(ByteSpan data) {
    timer_.expires_after(s_->opt.io_timeout);
    // asio::transfer_all offers the socket at most 64 KiB per send; a fetch
    // answer is megabytes, and each send is a syscall and a push through
    // TCP. Offering everything that is left lets the kernel take what fits.
    const size_t total = data.size();
    auto rest = [total](const asio::error_code& ec, size_t done) -> size_t {
      return ec ? 0 : total - done;
    };
    auto r =
        co_await (asio::async_write(sock_, asio::buffer(data.data(), data.size()), rest, kUse) ||
                  timer_.async_wait(kUse));
    if (r.index() == 1) co_return Status(StatusCode::kPermissionDenied, "write timed out");
    auto [ec, n] = std::get<0>(r);
    (void)n;
    if (ec) co_return IoError("write: " + ec.message());
    co_return Status::Ok();
  }

  NodeServer::Impl* s_;
  tcp::socket sock_;
  asio::steady_timer timer_;
  std::unique_ptr<Channel> channel_;
  FrameDecoder decoder_;
  std::unique_ptr<UnauthSlot> slot_;
  static constexpr size_t kRecvSize = 256 * 1024;
  static constexpr size_t kHandshakeRecvSize = 2048;  // Noise XX messages are < 200 bytes
  PeerInfo peer_;
  std::string peer_ip_ = "?";
};

awaitable<void> Accept(NodeServer::Impl* s) {
  while (!s->stopping.load()) {
    auto [ec, sock] = co_await s->acceptor.async_accept(kUse);
    if (ec) {
      if (s->stopping.load() || ec == asio::error::operation_aborted) co_return;
      continue;
    }
    asio::error_code addr_ec;
    const auto remote = sock.remote_endpoint(addr_ec);
    auto slot = std::make_unique<UnauthSlot>(s, addr_ec ? "?" : remote.address().to_string());
    if (!slot->Take()) {
      asio::error_code ignored;
      sock.close(ignored);  // over a cap: closed before anything is allocated for it
      continue;
    }
    sock.set_option(tcp::no_delay(true));
    // Each session on its own strand: its read, write and timer never race.
    auto strand = asio::make_strand(s->ctx);
    tcp::socket mine(strand);
    mine.assign(tcp::v4(), sock.release());
    auto session = std::make_shared<Session>(s, std::move(mine), std::move(slot));
    asio::co_spawn(
        strand, [session]() -> awaitable<void> { co_await session->Run(); }, asio::detached);
  }
}

}  // namespace

NodeServer::NodeServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeServer::~NodeServer() { Stop(); }

Result<std::unique_ptr<NodeServer>> NodeServer::New(NodeService* service,
                                                    const SigningKey* identity,
                                                    const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->service = service;
  impl->identity = identity;
  impl->opt = options;
  asio::error_code ec;
  auto addr = asio::ip::make_address(options.host, ec);
  if (ec) return InvalidArgument("listen address '" + options.host + "': " + ec.message());
  tcp::endpoint ep(addr, options.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return IoError("listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                   ec.message());
  }
  return std::unique_ptr<NodeServer>(new NodeServer(std::move(impl)));
}

uint16_t NodeServer::port() const { return impl_->acceptor.local_endpoint().port(); }

Status NodeServer::Run(bool handle_signals) {
  Impl* s = impl_.get();
  asio::signal_set signals(s->ctx);
  if (handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait([this](const asio::error_code& ec, int) {
      if (!ec) Stop();
    });
  }
  asio::co_spawn(s->ctx, Accept(s), asio::detached);
  int threads = s->opt.threads > 0
                    ? s->opt.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([s] { s->ctx.run(); });
  s->ctx.run();
  for (auto& t : pool) t.join();
  return Status::Ok();
}

void NodeServer::Stop() {
  if (!impl_) return;
  Impl* s = impl_.get();
  if (s->stopping.exchange(true)) return;
  asio::post(s->ctx, [s] {
    asio::error_code ignored;
    s->acceptor.close(ignored);
    s->ctx.stop();
  });
}

}  // namespace qv
