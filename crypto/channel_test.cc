#include "crypto/channel.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

// Runs a handshake between two channels by shuttling frames in memory.
struct Link {
  std::unique_ptr<SigningKey> a_key, b_key;
  std::unique_ptr<Channel> a, b;

  static Link Make(size_t max = kDefaultMaxMessage, size_t max_b = 0) {
    Link l;
    l.a_key = std::move(SigningKey::Generate()).value();
    l.b_key = std::move(SigningKey::Generate()).value();
    l.a = std::move(Channel::New(true, *l.a_key, AsBytes("qv-test/1"), max)).value();
    l.b =
        std::move(Channel::New(false, *l.b_key, AsBytes("qv-test/1"), max_b ? max_b : max)).value();
    return l;
  }

  // Delivers wire bytes to `to`; returns completed messages; replies go back.
  static std::vector<Bytes> Deliver(Channel& to, Channel& from, ByteSpan wire, Status* err) {
    std::vector<Bytes> got;
    FrameDecoder dec;
    *err = dec.Feed(wire);
    while (err->ok()) {
      auto f = dec.Next();
      if (!f) break;
      auto ev = to.OnFrame(*f);
      if (!ev.ok()) {
        *err = ev.status();
        break;
      }
      if (ev->message) got.push_back(std::move(*ev->message));
      if (!ev->to_send.empty()) Deliver(from, to, ev->to_send, err);
    }
    return got;
  }

  void Handshake() {
    Status err;
    Deliver(*b, *a, *a->Start(), &err);
    ASSERT_TRUE(err.ok()) << err.ToString();
    ASSERT_TRUE(a->established() && b->established());
  }
};

TEST(ChannelTest, HandshakeRevealsEachSidesPinnableIdentity) {
  Link l = Link::Make();
  l.Handshake();
  EXPECT_EQ(*l.a->remote_static(), *X25519PublicFromEd25519(l.b_key->public_key()));
  EXPECT_EQ(*l.b->remote_static(), *X25519PublicFromEd25519(l.a_key->public_key()));
}

TEST(ChannelTest, MessagesOfEverySizeRoundTripAcrossFrames) {
  Link l = Link::Make();
  l.Handshake();
  for (size_t size : {size_t{0}, size_t{1}, size_t{65518}, size_t{65519}, size_t{200000}}) {
    Bytes msg(size);
    for (size_t i = 0; i < size; ++i) msg[i] = static_cast<uint8_t>(i * 13);
    auto wire = l.a->Seal(msg);
    ASSERT_TRUE(wire.ok());
    Status err;
    auto got = Link::Deliver(*l.b, *l.a, *wire, &err);
    ASSERT_TRUE(err.ok()) << err.ToString();
    ASSERT_EQ(got.size(), 1u) << size;
    EXPECT_EQ(got[0], msg);
  }
}

TEST(ChannelTest, AMessageLikeThePreviousOneIsReceivedWithoutRegrowingItsBuffer) {
  // A restore receives gigabytes as equal multi-megabyte messages; regrowing
  // the receive buffer would copy each one again.
  Link l = Link::Make();
  l.Handshake();
  for (size_t size : {size_t{1}, size_t{65518}, size_t{65519}, size_t{1} << 20}) {
    for (int round = 0; round < 3; ++round) {
      auto wire = l.a->Seal(Bytes(size, 0x33));
      ASSERT_TRUE(wire.ok());
      Status err;
      auto got = Link::Deliver(*l.b, *l.a, *wire, &err);
      ASSERT_TRUE(err.ok()) << err.ToString();
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got[0].size(), size);
      // The first message of a size may grow its buffer; the next ones fit.
      if (round > 0) {
        EXPECT_LE(got[0].capacity(), size + 1) << size << " round " << round;
      }
    }
  }
}

TEST(ChannelTest, ReceivesOfferLittleRoomUntilReadsFillItThenUpToTheLimit) {
  // Each connection's buffer starts small: a witness round's health check
  // costs 32 KiB, not megabytes.
  constexpr size_t kMax = 256 * 1024;
  FrameDecoder dec;
  EXPECT_EQ(dec.Prepare(kMax).size(), FrameDecoder::kFirstRead);
  // A partial read keeps the offer; a full one doubles it, up to the limit.
  ASSERT_TRUE(dec.Commit(0).ok());
  EXPECT_EQ(dec.Prepare(kMax).size(), FrameDecoder::kFirstRead);
  size_t want = FrameDecoder::kFirstRead;
  for (int reads = 0; reads < 8; ++reads) {
    MutableByteSpan room = dec.Prepare(kMax);
    EXPECT_EQ(room.size(), std::min(want, kMax)) << reads;
    std::fill(room.begin(), room.end(), 0);  // zero-length frames, refused,
    (void)dec.Commit(room.size());           // but only the offers matter here
    want *= 2;
  }
  EXPECT_EQ(dec.Prepare(1000).size(), 1000u);  // never more than asked
  // Frames larger than the first offer still arrive whole, one read at a time.
  FrameDecoder big;
  const Bytes body(65535, 0x5a);
  const Bytes wire = EncodeFrame(body);
  size_t at = 0, reads = 0;
  while (!big.Peek()) {
    MutableByteSpan room = big.Prepare(kMax);
    const size_t n = std::min(room.size(), wire.size() - at);
    std::copy_n(wire.begin() + static_cast<std::ptrdiff_t>(at), n, room.begin());
    ASSERT_TRUE(big.Commit(n).ok());
    at += n;
    ASSERT_LT(++reads, 10u);
  }
  EXPECT_EQ(Bytes(big.Peek()->begin(), big.Peek()->end()), body);
  EXPECT_EQ(reads, 3u);  // 16 KiB, 32 KiB, then the last 16 KiB
}

TEST(ChannelTest, OversizedAndZeroLengthPrefixesAreRejected) {
  for (Bytes prefix : {Bytes{0xff, 0xff, 0xff, 0xff}, Bytes{0, 1, 0, 0}, Bytes{0, 0, 0, 0}}) {
    FrameDecoder dec;
    EXPECT_FALSE(dec.Feed(prefix).ok()) << HexEncode(prefix);
  }
  FrameDecoder dec;
  EXPECT_TRUE(dec.Feed(Bytes{0, 0, 0xff, 0xff}).ok());  // 65535 is allowed
  EXPECT_EQ(dec.Wanted(), 65535u);
}

TEST(ChannelTest, GarbageTamperingAndReplayCloseTheChannel) {
  Link l = Link::Make();
  l.Handshake();
  auto wire = l.a->Seal(AsBytes("hello"));
  ASSERT_TRUE(wire.ok());
  Bytes tampered(wire->span().begin(), wire->span().end());
  tampered.back() ^= 1;
  Status err;
  Link::Deliver(*l.b, *l.a, tampered, &err);
  EXPECT_FALSE(err.ok());
  // A fresh pair: replaying a frame twice fails the second time (nonce moved on).
  Link m = Link::Make();
  m.Handshake();
  auto sealed = m.a->Seal(AsBytes("once"));
  ASSERT_TRUE(sealed.ok());
  ByteSpan w = *sealed;
  Link::Deliver(*m.b, *m.a, w, &err);
  ASSERT_TRUE(err.ok());
  Link::Deliver(*m.b, *m.a, w, &err);
  EXPECT_FALSE(err.ok());
  // Garbage instead of a handshake.
  Link g = Link::Make();
  Bytes junk(100, 0x42);
  Link::Deliver(*g.b, *g.a, EncodeFrame(junk), &err);
  EXPECT_FALSE(err.ok());
}

TEST(ChannelTest, MessagesOverTheLimitAreRefusedBothWays) {
  Link l = Link::Make(1000);
  l.Handshake();
  EXPECT_FALSE(l.a->Seal(Bytes(1001)).ok());
  // A peer with a larger limit cannot push one through either: the receiver
  // stops reassembling at its own limit.
  Link mixed = Link::Make(kDefaultMaxMessage, 1000);
  mixed.Handshake();
  Status err;
  Link::Deliver(*mixed.b, *mixed.a, *mixed.a->Seal(Bytes(1000)), &err);
  EXPECT_TRUE(err.ok());
  Link::Deliver(*mixed.b, *mixed.a, *mixed.a->Seal(Bytes(200000)), &err);
  EXPECT_FALSE(err.ok());
  EXPECT_NE(err.message().find("limit"), std::string::npos);
}

TEST(ChannelTest, DifferentProloguesNeverEstablish) {
  auto ka = SigningKey::Generate();
  auto kb = SigningKey::Generate();
  auto a = Channel::New(true, **ka, AsBytes("quorumvault/1"));
  auto b = Channel::New(false, **kb, AsBytes("quorumvault/2"));
  Status err;
  Link::Deliver(**b, **a, *(*a)->Start(), &err);
  EXPECT_FALSE(err.ok());
  EXPECT_FALSE((*a)->established());
}

}  // namespace
}  // namespace qv
