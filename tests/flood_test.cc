// Floods and stalls against a real node on loopback: memory stays bounded
// under held unauthenticated connections, pinned peers keep working, and a
// pinned peer cannot hold a connection by trickling bytes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "crypto/channel.h"
#include "node/messages.h"
#include "node/server.h"
#include "tests/cluster_fixture.h"

namespace qv {
namespace {

class FloodTest : public ClusterTest {
 protected:
  int NodePid(int i) {
    return std::atoi(Slurp(dir() / "cl/nodes" / NodeId(i) / "node.pid").c_str());
  }

  // Resident memory of node i, in MiB.
  double RssMiB(int i) {
    const std::string st = Slurp("/proc/" + std::to_string(NodePid(i)) + "/status");
    const size_t p = st.find("VmRSS:");
    return p == std::string::npos ? -1 : std::atof(st.c_str() + p + 6) / 1024.0;
  }

  // A TCP connection to node i from source address `from` (127.0.0.0/8),
  // or -1 once the system refuses more.
  int ConnectFrom(int i, const char* from) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(base_port_ + i));
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
};

// Held, silent connections from one address (as one keyless client makes
// them): the node's memory does not grow with their number, and the
// coordinator's status and a backup (from 127.0.0.1) succeed meanwhile.
TEST_F(FloodTest, HeldUnauthenticatedConnectionsNeitherGrowTheNodeNorLockOutPinnedPeers) {
  rlimit r{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &r), 0);
  r.rlim_cur = std::min<rlim_t>(r.rlim_max, 12000);
  ::setrlimit(RLIMIT_NOFILE, &r);
  ASSERT_GE(r.rlim_cur, 10100u) << "the test needs 10,100 descriptors";
  ASSERT_EQ(Qv("sample --out model --size 2MiB --shards 1").code, 0);
  const double idle = RssMiB(0);
  std::vector<int> held;
  for (size_t target : {size_t{1000}, size_t{10000}}) {
    while (held.size() < target) {
      int fd = ConnectFrom(0, "127.0.0.2");
      ASSERT_GE(fd, 0) << "connection " << held.size() << ": " << std::strerror(errno);
      held.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const double rss = RssMiB(0);
    std::printf("node RSS with %zu unauthenticated connections held: %.1f MiB (idle %.1f MiB)\n",
                held.size(), rss, idle);
    EXPECT_LT(rss - idle, 48.0) << held.size() << " connections";
    Outcome status = Qv("status --cluster cl/cluster.toml");
    EXPECT_EQ(status.code, 0) << status.err << status.out;
  }
  Outcome b = Qv("backup --cluster cl/cluster.toml --key cl/coordinator.key model");
  EXPECT_EQ(b.code, 0) << b.err;
  for (int fd : held) ::close(fd);
  // The node counted what it turned away.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_LT(RssMiB(0) - idle, 48.0);
}

// A pinned peer that completes the handshake and then sends a request one
// byte at a time: the whole message must arrive within message_timeout_ms
// (5 s here), whatever the pace of its bytes.
TEST_F(FloodTest, APeerTricklingOneMessageIsCutOffAtTheMessageDeadline) {
  auto key = SigningKey::Load(dir() / "cl/coordinator.key");
  ASSERT_TRUE(key.ok());
  auto ch = Channel::New(true, **key, AsBytes(kChannelPrologue));
  ASSERT_TRUE(ch.ok());
  int fd = ConnectFrom(0, "127.0.0.1");
  ASSERT_GE(fd, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto send_all = [&](ByteSpan b) {
    return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
  };
  ASSERT_TRUE(send_all(*(*ch)->Start()));
  FrameDecoder dec;
  while (!(*ch)->established()) {
    uint8_t buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    ASSERT_TRUE(dec.Feed(ByteSpan(buf, static_cast<size_t>(n))).ok());
    while (auto frame = dec.Next()) {
      auto ev = (*ch)->OnFrame(*frame);
      ASSERT_TRUE(ev.ok()) << ev.status().ToString();
      if (!ev->to_send.empty()) {
        ASSERT_TRUE(send_all(ev->to_send));
      }
    }
  }
  Request health;
  health.op = Op::kHealth;
  auto wire = (*ch)->Seal(*EncodeRequest(health));
  ASSERT_TRUE(wire.ok());
  ASSERT_GT(wire->size(), 20u);
  const auto start = std::chrono::steady_clock::now();
  bool cut = false;
  // One byte each 400 ms, never the last one; at most 14 s.
  for (size_t i = 0; i + 1 < wire->size() && i < 35 && !cut; ++i) {
    cut = !send_all(ByteSpan(wire->data() + i, 1));
    char c;
    const ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
    cut |= n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    if (!cut) std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(cut) << "still connected after " << s << " s";
  EXPECT_LT(s, 8.0);
  EXPECT_GT(s, 4.5);  // not before the deadline: a slow but honest peer gets its 5 s
  ::close(fd);
}

}  // namespace
}  // namespace qv
