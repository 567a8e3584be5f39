#include "node/node_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace qv {

namespace {

constexpr std::string_view kPrologue = "quorumvault/1";

Result<int> ConnectWithTimeout(const std::string& host, uint16_t port,
                               std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string where = host + ":" + std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    return IoError(where + ": " + gai_strerror(rc));
  }
  Status last = IoError(where + ": no address");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc == 0) {
        ::close(fd);
        last = IoError(where + ": connect timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last = IoError(where + ": " + std::strerror(errno));
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return last;
}

}  // namespace

Result<std::unique_ptr<NodeClient>> NodeClient::Connect(const NodeEntry& node,
                                                        const SigningKey& identity,
                                                        const ClientOptions& options) {
  std::unique_ptr<NodeClient> c(new NodeClient());
  c->name_ = node.id;
  c->cancel_fd_ = options.cancel_fd;
  c->io_timeout_ms_ = std::max<int64_t>(1, options.io_timeout.count());
  QV_ASSIGN_OR_RETURN(c->fd_, ConnectWithTimeout(node.host, node.port, options.connect_timeout));
  timeval tv{};
  tv.tv_sec = options.io_timeout.count() / 1000;
  tv.tv_usec = (options.io_timeout.count() % 1000) * 1000;
  ::setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(c->fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  QV_ASSIGN_OR_RETURN(c->channel_, Channel::New(true, identity, AsBytes(kPrologue)));
  QV_ASSIGN_OR_RETURN(Bytes first, c->channel_->Start());
  QV_RETURN_IF_ERROR(c->SendAll(first).WithContext(node.id));
  while (!c->channel_->established()) {
    Status got = c->FillFrame();
    if (!got.ok()) return got.WithContext(node.id + ": handshake");
    auto ev = c->channel_->OnFrame(*c->decoder_.Peek());
    c->decoder_.Pop();
    if (!ev.ok()) return ev.status().WithContext(node.id + ": handshake");
    if (!ev->to_send.empty()) QV_RETURN_IF_ERROR(c->SendAll(ev->to_send).WithContext(node.id));
  }
  QV_ASSIGN_OR_RETURN(auto expected, X25519PublicFromEd25519(node.public_key));
  if (*c->channel_->remote_static() != expected) {
    return Unauthenticated(node.id + " at " + node.host + ":" + std::to_string(node.port) +
                           " proved a key that is not the one pinned in the cluster file");
  }
  return c;
}

NodeClient::~NodeClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status NodeClient::SendAll(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoError("write timed out");
      return ErrnoError("write");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void NodeClient::SetDeadline(std::chrono::steady_clock::time_point deadline) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch());
  deadline_ns_.store(std::max<int64_t>(1, ns.count()));
}

Status NodeClient::FillFrame() {
  while (!decoder_.Peek()) {
    // Wait for bytes no longer than the read timeout, the whole-exchange
    // deadline and the cancel descriptor allow.
    int64_t wait_ms = io_timeout_ms_;
    bool by_deadline = false;
    if (const int64_t d = deadline_ns_.load(); d != 0) {
      const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now().time_since_epoch());
      const int64_t left_ms = (d - now.count()) / 1000000;
      if (left_ms <= 0) return IoError("deadline passed");
      by_deadline = left_ms < wait_ms;
      wait_ms = std::min(wait_ms, left_ms);
    }
    pollfd p[2] = {{fd_, POLLIN, 0}, {cancel_fd_, POLLIN, 0}};
    const int rc = ::poll(p, cancel_fd_ >= 0 ? 2 : 1, static_cast<int>(wait_ms));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (cancel_fd_ >= 0 && p[1].revents != 0) return IoError("cancelled");
    if (rc == 0) return IoError(by_deadline ? "deadline passed" : "read timed out");
    MutableByteSpan space = decoder_.Prepare(kRecvSize);
    ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoError("read timed out");
      return ErrnoError("read");
    }
    if (n == 0) return IoError("connection closed by the node");
    QV_RETURN_IF_ERROR(decoder_.Commit(static_cast<size_t>(n)));
  }
  return Status::Ok();
}

void NodeClient::Break() {
  broken_ = true;
  ::shutdown(fd_, SHUT_RDWR);
}

Status NodeClient::SendLocked(Request request) {
  if (broken_) return IoError("connection is closed after an earlier error");
  Status st = [&]() -> Status {
    QV_ASSIGN_OR_RETURN(Bytes body, EncodeRequest(std::move(request)));
    QV_ASSIGN_OR_RETURN(WireBytes wire, channel_->Seal(body));
    return SendAll(wire);
  }();
  if (!st.ok()) Break();
  return st;
}

Result<Response> NodeClient::ReceiveLocked() {
  if (broken_) return IoError("connection is closed after an earlier error");
  auto result = [&]() -> Result<Response> {
    while (true) {
      QV_RETURN_IF_ERROR(FillFrame());
      auto ev = channel_->OnFrame(*decoder_.Peek());
      decoder_.Pop();
      if (!ev.ok()) return ev.status();
      if (ev->message) return DecodeResponse(std::move(*ev->message));
    }
  }();
  if (!result.ok()) Break();
  return result;
}

Result<Response> NodeClient::Call(Request request) {
  std::unique_lock<std::mutex> lock(mu_);
  ++calls_waiting_;
  idle_.wait(lock, [&] { return outstanding_ == 0 || broken_; });
  --calls_waiting_;
  QV_RETURN_IF_ERROR(SendLocked(std::move(request)));
  auto r = ReceiveLocked();
  idle_.notify_all();
  return r;
}

Status NodeClient::Send(Request request) {
  std::unique_lock<std::mutex> lock(mu_);
  // A Call waiting for a drained pipeline goes before the next request; with
  // requests outstanding the pipeline goes on (its owner must receive them
  // for the Call to run, and blocking it here would deadlock).
  idle_.wait(lock, [&] { return calls_waiting_ == 0 || broken_ || outstanding_ > 0; });
  QV_RETURN_IF_ERROR(SendLocked(std::move(request)));
  ++outstanding_;
  return Status::Ok();
}

Result<Response> NodeClient::Receive() {
  std::lock_guard<std::mutex> lock(mu_);
  if (outstanding_ == 0) return FailedPrecondition("receive with no request sent");
  auto r = ReceiveLocked();
  if (--outstanding_ == 0 || broken_) idle_.notify_all();
  return r;
}

}  // namespace qv
