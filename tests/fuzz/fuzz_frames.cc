// libFuzzer target: arbitrary bytes arriving at a node before and during the
// handshake. The frame decoder and the Noise responder must reject or accept
// without crashing, hanging or reading out of bounds.
#include <cstddef>
#include <cstdint>

#include "crypto/channel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto key = std::move(qv::SigningKey::Generate()).value();
  auto channel = qv::Channel::New(false, *key, qv::AsBytes("quorumvault/1"), 1 << 20);
  if (!channel.ok()) return 0;
  qv::FrameDecoder decoder;
  // Feed in two pieces so split frames are exercised too.
  const size_t half = size / 2;
  for (qv::ByteSpan piece : {qv::ByteSpan(data, half), qv::ByteSpan(data + half, size - half)}) {
    if (!decoder.Feed(piece).ok()) return 0;
    while (auto frame = decoder.Next()) {
      auto ev = (*channel)->OnFrame(*frame);
      if (!ev.ok()) return 0;
    }
  }
  return 0;
}
