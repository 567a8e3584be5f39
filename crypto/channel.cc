#include "crypto/channel.h"

#include <cstring>

namespace qv {

namespace {
// Frame plaintext budget: the Noise message limit less the AEAD tag and flag.
constexpr size_t kMaxChunk = noise::kMaxMessage - kAeadTagSize - 1;
}  // namespace

Bytes EncodeFrame(ByteSpan body) {
  Bytes out(kFrameHeaderSize + body.size());
  const uint32_t n = static_cast<uint32_t>(body.size());
  out[0] = uint8_t(n >> 24);
  out[1] = uint8_t(n >> 16);
  out[2] = uint8_t(n >> 8);
  out[3] = uint8_t(n);
  if (!body.empty()) std::memcpy(out.data() + kFrameHeaderSize, body.data(), body.size());
  return out;
}

Status FrameDecoder::Feed(ByteSpan data) {
  buf_.insert(buf_.end(), data.begin(), data.end());
  while (buf_.size() >= kFrameHeaderSize) {
    const uint32_t n =
        uint32_t{buf_[0]} << 24 | uint32_t{buf_[1]} << 16 | uint32_t{buf_[2]} << 8 | buf_[3];
    if (n == 0 || n > noise::kMaxMessage) {
      return InvalidArgument("frame length " + std::to_string(n) + " outside 1..65535");
    }
    if (buf_.size() < kFrameHeaderSize + n) break;
    ready_.emplace_back(buf_.begin() + kFrameHeaderSize, buf_.begin() + kFrameHeaderSize + n);
    buf_.erase(buf_.begin(), buf_.begin() + kFrameHeaderSize + n);
  }
  return Status::Ok();
}

std::optional<Bytes> FrameDecoder::Next() {
  if (ready_.empty()) return std::nullopt;
  Bytes f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

size_t FrameDecoder::Wanted() const {
  if (buf_.size() < kFrameHeaderSize) return kFrameHeaderSize - buf_.size();
  const uint32_t n =
      uint32_t{buf_[0]} << 24 | uint32_t{buf_[1]} << 16 | uint32_t{buf_[2]} << 8 | buf_[3];
  return kFrameHeaderSize + n - buf_.size();
}

Result<std::unique_ptr<Channel>> Channel::New(bool initiator, const SigningKey& identity,
                                              ByteSpan prologue, size_t max_message) {
  std::unique_ptr<Channel> c(new Channel());
  c->initiator_ = initiator;
  c->max_message_ = max_message;
  SecretBytes s = identity.X25519Secret();
  noise::HandshakeConfig cfg;
  cfg.pattern = noise::Pattern::kXX;
  cfg.initiator = initiator;
  cfg.prologue.assign(prologue.begin(), prologue.end());
  cfg.static_secret = &s;
  QV_ASSIGN_OR_RETURN(c->hs_, noise::HandshakeState::New(cfg));
  return c;
}

Result<Bytes> Channel::Start() {
  if (!initiator_) return Bytes();
  QV_ASSIGN_OR_RETURN(Bytes m, hs_->WriteMessage({}));
  return EncodeFrame(m);
}

Result<Channel::Event> Channel::OnFrame(ByteSpan frame) {
  Event ev;
  if (!established()) {
    QV_ASSIGN_OR_RETURN(Bytes payload, hs_->ReadMessage(frame));
    if (!payload.empty()) return InvalidArgument("unexpected handshake payload");
    if (hs_->IsMyTurn()) {
      QV_ASSIGN_OR_RETURN(Bytes m, hs_->WriteMessage({}));
      ev.to_send = EncodeFrame(m);
    }
    if (hs_->IsComplete()) {
      QV_ASSIGN_OR_RETURN(auto pair, hs_->Split());
      send_ = std::move(pair.first);
      recv_ = std::move(pair.second);
    }
    return ev;
  }
  QV_ASSIGN_OR_RETURN(Bytes plain, recv_->DecryptWithAd({}, frame));
  if (plain.empty() || plain[0] > 1) return InvalidArgument("malformed transport frame");
  if (partial_.size() + plain.size() - 1 > max_message_) {
    return InvalidArgument("message exceeds the " + std::to_string(max_message_) + "-byte limit");
  }
  partial_.insert(partial_.end(), plain.begin() + 1, plain.end());
  if (plain[0] == 1) {
    ev.message = std::move(partial_);
    partial_.clear();
  }
  return ev;
}

Result<Bytes> Channel::Seal(ByteSpan message) {
  if (!established()) return FailedPrecondition("channel handshake not complete");
  if (message.size() > max_message_) {
    return InvalidArgument("message exceeds the " + std::to_string(max_message_) + "-byte limit");
  }
  Bytes wire;
  wire.reserve(message.size() + (message.size() / kMaxChunk + 1) * (kFrameHeaderSize + 17));
  Bytes chunk;
  size_t off = 0;
  do {
    const size_t n = std::min(kMaxChunk, message.size() - off);
    chunk.assign(1, off + n == message.size() ? 1 : 0);
    chunk.insert(chunk.end(), message.begin() + off, message.begin() + off + n);
    QV_ASSIGN_OR_RETURN(Bytes c, send_->EncryptWithAd({}, chunk));
    AppendBytes(wire, EncodeFrame(c));
    off += n;
  } while (off < message.size());
  return wire;
}

}  // namespace qv
