#include "node/messages.h"

#include <gtest/gtest.h>

namespace qv {
namespace {

TEST(MessagesTest, RequestsAndResponsesRoundTrip) {
  Request r;
  r.op = Op::kFetchUnits;
  r.backup_id[3] = 7;
  r.fragment = 5;
  r.a = 1ull << 40;
  r.b = 3;
  r.payload = {1, 2, 3};
  auto wire = EncodeRequest(r);
  ASSERT_TRUE(wire.ok());
  auto back = DecodeRequest(*wire);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->op, Op::kFetchUnits);
  EXPECT_EQ(back->backup_id, r.backup_id);
  EXPECT_EQ(back->a, r.a);
  EXPECT_EQ(back->payload, r.payload);

  Response resp = Response::FromStatus(NotFound("no such backup"));
  resp.ids.push_back({});
  resp.node_id = "node-02";
  auto rw = EncodeResponse(resp);
  auto rb = DecodeResponse(*rw);
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->ToStatus().code(), StatusCode::kNotFound);
  EXPECT_EQ(rb->node_id, "node-02");
  EXPECT_EQ(rb->ids.size(), 1u);
}

TEST(MessagesTest, EveryTruncationAndGarbageIsAnErrorNotACrash) {
  Request r;
  r.op = Op::kPrepare;
  r.payload.assign(100, 9);
  Bytes wire = *EncodeRequest(r);
  for (size_t len = 0; len < wire.size(); ++len) {
    EXPECT_FALSE(DecodeRequest(ByteSpan(wire.data(), len)).ok()) << len;
  }
  Bytes longer = wire;
  longer.push_back(0);
  EXPECT_FALSE(DecodeRequest(longer).ok());
  Bytes junk(64, 0xff);
  EXPECT_FALSE(DecodeRequest(junk).ok());
  EXPECT_FALSE(DecodeResponse(junk).ok());
}

TEST(MessagesTest, AForgedHugeLengthIsRefusedBeforeAllocating) {
  Request r;
  r.op = Op::kFragmentData;
  r.payload = {1, 2, 3};
  const Bytes good = *EncodeRequest(r);
  // payload2's u64 length is the header's last field, just before the trailer.
  Bytes forged = good;
  for (size_t i = forged.size() - 4 - 8; i < forged.size() - 4; ++i) forged[i] = 0xff;
  auto d = DecodeRequest(forged);
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("limit"), std::string::npos) << d.status().message();
  // A trailer claiming a header longer than the message.
  Bytes bad_trailer = good;
  for (size_t i = bad_trailer.size() - 4; i < bad_trailer.size(); ++i) bad_trailer[i] = 0xff;
  EXPECT_FALSE(DecodeRequest(bad_trailer).ok());
}

// kMaxPayload bounds both ends: an encoder refuses a larger payload, and a
// decoder refuses a message whose payload (what precedes the header) is
// larger, even when its header is valid, at every size around the bound.
TEST(MessagesTest, APayloadOverTheLimitIsRefusedByEncoderAndDecoder) {
  Request big;
  big.op = Op::kFragmentData;
  big.payload.resize(kMaxPayload + 1);
  EXPECT_FALSE(EncodeRequest(big).ok());
  big.payload.resize(kMaxPayload - 1);
  auto encoded = EncodeRequest(big);
  ASSERT_TRUE(encoded.ok());
  for (size_t extra : {0, 1, 2}) {  // payloads of kMaxPayload - 1, kMaxPayload, kMaxPayload + 1
    Bytes msg = *encoded;
    msg.insert(msg.begin(), extra, uint8_t{0});
    auto decoded = DecodeRequest(ByteSpan(msg));
    if (extra < 2) {
      ASSERT_TRUE(decoded.ok()) << extra << ": " << decoded.status().ToString();
      EXPECT_EQ(decoded->payload.size(), kMaxPayload - 1 + extra);
    } else {
      ASSERT_FALSE(decoded.ok());
      EXPECT_EQ(decoded.status().message(), "payload over the limit");
    }
  }
}

TEST(MessagesTest, TheMessageBufferBecomesThePayloadWithoutACopy) {
  Request r;
  r.op = Op::kFragmentData;
  r.payload.assign(1 << 20, 0x42);
  Bytes wire = *EncodeRequest(std::move(r));
  const uint8_t* buffer = wire.data();
  auto d = DecodeRequest(std::move(wire));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->payload.size(), 1u << 20);
  EXPECT_EQ(d->payload.data(), buffer);  // same allocation
}

TEST(MessagesTest, UnknownOpsAndVersionsAreRefused) {
  Request r;
  r.op = static_cast<Op>(99);
  EXPECT_FALSE(DecodeRequest(*EncodeRequest(r)).ok());
  for (uint32_t version : {kProtocolVersion - 1, kProtocolVersion + 1}) {
    Request v;
    v.version = version;
    auto d = DecodeRequest(*EncodeRequest(v));
    EXPECT_FALSE(d.ok());
    EXPECT_NE(d.status().message().find("protocol version " + std::to_string(version)),
              std::string::npos);
  }
}

// The exact bytes of each header: peers at different releases must read
// them alike, so they change only with the protocol version.
TEST(MessagesTest, HeaderBytesArePinned) {
  Request r;
  r.op = Op::kFetchUnits;
  r.backup_id.fill(0xab);
  r.fragment = 3;
  r.a = 5;
  r.b = 0x0102030405060708;
  r.payload = {0xee, 0xff};
  r.payload2 = {0x11};
  EXPECT_EQ(HexEncode(*EncodeRequest(r)),
            "eeff"  // payload, raw, first
            "00000002"
            "0a"
            "abababababababababababababababab"  // version, op, backup id
            "00000003"
            "0000000000000005"
            "0102030405060708"  // fragment, a, b
            "00000001"
            "11"          // payload2
            "0000002e");  // header length: 46
  Response resp;
  resp.code = static_cast<uint8_t>(StatusCode::kNotFound);
  resp.message = "no";
  resp.ids.resize(1);
  resp.ids[0].fill(0x01);
  resp.node_id = "n1";
  resp.payload = {0x42};
  EXPECT_EQ(HexEncode(*EncodeResponse(resp)),
            "42"
            "02"
            "000000026e6f"
            "00000001"
            "01010101010101010101010101010101"
            "000000026e31"
            "00000021");
}

}  // namespace
}  // namespace qv
