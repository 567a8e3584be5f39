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

namespace {
uint32_t Length(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
}  // namespace

Status FrameDecoder::Check() const {
  if (end_ - start_ >= kFrameHeaderSize) {
    const uint32_t n = Length(buf_.data() + start_);
    if (n == 0 || n > noise::kMaxMessage) {
      return InvalidArgument("frame length " + std::to_string(n) + " outside 1..65535");
    }
  }
  return Status::Ok();
}

void FrameDecoder::Reserve(size_t n) {
  if (buf_.size() - end_ >= n) return;
  // Compacting only when the tail runs out keeps the moved bytes (at most one
  // partial frame) small next to what was received since the last move.
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  if (buf_.size() - end_ < n) buf_.resize(std::max(end_ + n, 2 * n));
}

Status FrameDecoder::Feed(ByteSpan data) {
  Reserve(data.size());
  if (!data.empty()) std::memcpy(buf_.data() + end_, data.data(), data.size());
  end_ += data.size();
  return Check();
}

MutableByteSpan FrameDecoder::Prepare(size_t max) {
  // A frame is at most 64 KiB, so a small offer never stalls one: the buffer
  // compacts or grows by the offer until the frame is in.
  offered_ = std::min(max, read_size_);
  Reserve(offered_);
  return MutableByteSpan(buf_.data() + end_, offered_);
}

Status FrameDecoder::Commit(size_t n) {
  // A read that filled its offer says more is waiting: offer twice as much.
  if (n > 0 && n >= offered_ && read_size_ < (size_t{1} << 30)) read_size_ *= 2;
  offered_ = 0;
  end_ += std::min(n, buf_.size() - end_);
  return Check();
}

std::optional<ByteSpan> FrameDecoder::Peek() const {
  const size_t avail = end_ - start_;
  if (avail < kFrameHeaderSize) return std::nullopt;
  const uint32_t n = Length(buf_.data() + start_);
  if (n == 0 || n > noise::kMaxMessage || avail < kFrameHeaderSize + n) return std::nullopt;
  return ByteSpan(buf_.data() + start_ + kFrameHeaderSize, n);
}

void FrameDecoder::Pop() {
  if (auto f = Peek()) start_ += kFrameHeaderSize + f->size();
  if (start_ == end_) start_ = end_ = 0;
}

std::optional<Bytes> FrameDecoder::Next() {
  auto f = Peek();
  if (!f) return std::nullopt;
  Bytes out(f->begin(), f->end());
  Pop();
  return out;
}

size_t FrameDecoder::Wanted() const {
  const size_t avail = end_ - start_;
  if (avail < kFrameHeaderSize) return kFrameHeaderSize - avail;
  const size_t need = kFrameHeaderSize + Length(buf_.data() + start_);
  return need > avail ? need - avail : 0;
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
  if (frame.size() < kAeadTagSize + 1) return InvalidArgument("malformed transport frame");
  const size_t body = frame.size() - kAeadTagSize;  // plaintext: data || flag
  if (partial_.size() + body - 1 > max_message_) {
    return InvalidArgument("message exceeds the " + std::to_string(max_message_) + "-byte limit");
  }
  const size_t old = partial_.size();
  partial_.resize(old + body);
  Status st = recv_->OpenTo({}, frame, partial_.data() + old);
  if (!st.ok()) return st;
  const uint8_t flag = partial_.back();
  partial_.pop_back();
  if (flag > 1) return InvalidArgument("malformed transport frame");
  if (flag == 1) {
    const size_t size = partial_.size();
    ev.message = std::move(partial_);
    // Messages on a connection tend to be alike; sizing the next buffer like
    // this one avoids regrowing (and recopying) it. The last frame's flag
    // byte lands after the message before it is dropped, so the buffer needs
    // one byte more than the message: without it, every message was copied
    // once more into a buffer twice its size when its last frame arrived.
    partial_ = Bytes();
    partial_.reserve(size + 1);
  }
  return ev;
}

Result<WireBytes> Channel::Seal(ByteSpan message) {
  if (!established()) return FailedPrecondition("channel handshake not complete");
  if (message.size() > max_message_) {
    return InvalidArgument("message exceeds the " + std::to_string(max_message_) + "-byte limit");
  }
  const size_t frames = message.empty() ? 1 : (message.size() + kMaxChunk - 1) / kMaxChunk;
  WireBytes wire(message.size() + frames * (kFrameHeaderSize + 1 + kAeadTagSize));
  uint8_t* p = wire.data();
  size_t off = 0;
  for (size_t f = 0; f < frames; ++f) {
    const size_t n = std::min(kMaxChunk, message.size() - off);
    const uint32_t len = static_cast<uint32_t>(n + 1 + kAeadTagSize);
    p[0] = uint8_t(len >> 24);
    p[1] = uint8_t(len >> 16);
    p[2] = uint8_t(len >> 8);
    p[3] = uint8_t(len);
    const uint8_t flag = f + 1 == frames ? 1 : 0;
    QV_RETURN_IF_ERROR(
        send_->SealTo({}, message.subspan(off, n), ByteSpan(&flag, 1), p + kFrameHeaderSize));
    p += kFrameHeaderSize + len;
    off += n;
  }
  return wire;
}

}  // namespace qv
