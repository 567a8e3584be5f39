// A mutually authenticated, encrypted message channel over any byte stream:
// Noise_XX with static keys derived from Ed25519 identities, sans I/O.
//
// Wire format: a sequence of frames, each a big-endian u32 length (1..65535)
// followed by one Noise message. The three XX handshake messages come first;
// after them every frame is a transport message whose plaintext ends with
// one flag byte (1: last frame of an application message, 0: more follow),
// so messages larger than a frame are split and reassembled, up to a
// maximum message size. Anything else (a zero or oversized length, a frame
// that fails authentication, an unknown flag, a message over the limit) is an
// error after which the connection must be closed.
//
// The caller owns I/O: it feeds received bytes in and writes out what the
// channel returns. One Channel per connection, used from one thread at a time.
// After the handshake the caller MUST check remote_identity() against its
// pinned keys before acting on any message.
#ifndef QV_CRYPTO_CHANNEL_H_
#define QV_CRYPTO_CHANNEL_H_

#include <memory>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/identity.h"
#include "crypto/noise.h"

namespace qv {

inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kDefaultMaxMessage = 32u << 20;

// Splits a byte stream into frames without copying them: Peek() returns a
// view into the buffer, valid until the next Pop() or Feed().
class FrameDecoder {
 public:
  // Appends data; fails on a length outside 1..65535.
  Status Feed(ByteSpan data);
  // Zero-copy receive: Prepare returns up to `max` writable bytes at the end
  // of the buffer (valid until the next call on this decoder); the caller
  // reads into them and then commits the `n` bytes it got, which Feed checks.
  // It offers kFirstRead bytes at first and twice as many after each read
  // that filled its offer: a connection of small messages (a witness
  // round's health check, a coordinator's status call) holds 32 KiB, a bulk
  // transfer soon reads `max` at a time.
  static constexpr size_t kFirstRead = 16 * 1024;
  MutableByteSpan Prepare(size_t max);
  Status Commit(size_t n);
  // The next complete frame body, if one is buffered.
  std::optional<ByteSpan> Peek() const;
  void Pop();
  // The next frame as a copy (convenience for tests and handshakes).
  std::optional<Bytes> Next();
  // Bytes needed before the next frame is complete (a lower bound for reads).
  size_t Wanted() const;

 private:
  Status Check() const;
  void Reserve(size_t n);  // room for n more bytes after end_
  // Buffered bytes are buf_[start_, end_); buf_ past end_ is spare capacity,
  // kept so receives land in place without zero-filling or regrowing.
  Bytes buf_;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t read_size_ = kFirstRead;  // the next Prepare's offer, before `max`
  size_t offered_ = 0;             // what the last Prepare offered
};

Bytes EncodeFrame(ByteSpan body);

// Sealed frames ready for the socket. The buffer is allocated without being
// zero-filled (Seal writes every byte), which matters at gigabytes.
class WireBytes {
 public:
  WireBytes() = default;
  explicit WireBytes(size_t size)
      : data_(std::make_unique_for_overwrite<uint8_t[]>(size)), size_(size) {}
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  ByteSpan span() const { return ByteSpan(data_.get(), size_); }
  operator ByteSpan() const { return span(); }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

class Channel {
 public:
  // `prologue` binds the channel to a protocol and version ("quorumvault/1").
  static Result<std::unique_ptr<Channel>> New(bool initiator, const SigningKey& identity,
                                              ByteSpan prologue,
                                              size_t max_message = kDefaultMaxMessage);

  // Initiator: the first handshake frame to send. Responder: empty.
  Result<Bytes> Start();
  // Processes one received frame body. Returns wire bytes to send (maybe
  // empty) and, after the handshake, a completed application message.
  struct Event {
    Bytes to_send;
    std::optional<Bytes> message;
  };
  Result<Event> OnFrame(ByteSpan frame);

  bool established() const { return send_.has_value(); }
  // The peer's X25519 static key; compare with PinnedX25519(pinned Ed25519 key).
  const std::optional<noise::DhPublic>& remote_static() const { return hs_->remote_static(); }

  // Wire bytes (one or more frames) carrying `message`, each frame encrypted
  // straight from it (the message is read once, never copied).
  Result<WireBytes> Seal(ByteSpan message);

 private:
  Channel() = default;
  std::unique_ptr<noise::HandshakeState> hs_;
  std::optional<noise::CipherState> send_, recv_;
  bool initiator_ = false;
  size_t max_message_ = kDefaultMaxMessage;
  Bytes partial_;
};

}  // namespace qv

#endif  // QV_CRYPTO_CHANNEL_H_
