#include "node/messages.h"

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/stream.hpp>
#include <boost/serialization/binary_object.hpp>
#include <boost/serialization/split_member.hpp>
#include <sstream>

#include "base/text.h"
#include "base/wire.h"

namespace qv {

namespace {

constexpr auto kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

// A byte string (Bytes or std::string) with a hard limit, checked before
// anything is allocated.
template <class Container, size_t Max>
struct Bounded {
  Container* v;
  template <class Ar>
  void save(Ar& ar, unsigned) const {
    uint64_t n = v->size();
    ar << n;
    if (n) ar.save_binary(v->data(), n);
  }
  template <class Ar>
  void load(Ar& ar, unsigned) {
    uint64_t n = 0;
    ar >> n;
    if (n > Max) throw std::length_error("field length " + std::to_string(n) + " over limit");
    v->resize(n);
    if (n) ar.load_binary(v->data(), n);
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

struct BoundedIds {
  std::vector<std::array<uint8_t, 16>>* v;
  template <class Ar>
  void save(Ar& ar, unsigned) const {
    uint64_t n = v->size();
    ar << n;
    for (auto& id : *v) ar.save_binary(id.data(), id.size());
  }
  template <class Ar>
  void load(Ar& ar, unsigned) {
    uint64_t n = 0;
    ar >> n;
    if (n > (1u << 20)) throw std::length_error("id list over limit");
    v->resize(n);
    for (auto& id : *v) ar.load_binary(id.data(), id.size());
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

template <class Ar>
void Fields(Ar& ar, Request& r, uint8_t& op) {
  // The bulk payload travels raw before the header (see EncodeAfterPayload).
  Bounded<Bytes, 4096> p2{&r.payload2};
  ar& r.version& op;
  ar& boost::serialization::make_binary_object(r.backup_id.data(), r.backup_id.size());
  ar& r.fragment& r.a& r.b& p2;
}

template <class Ar>
void Fields(Ar& ar, Response& r) {
  Bounded<std::string, 4096> msg{&r.message}, node{&r.node_id};
  BoundedIds ids{&r.ids};
  ar& r.code& msg& ids& node;
}

// Reads from a span without copying it.
using SpanStream = boost::iostreams::stream<boost::iostreams::array_source>;

// Splits payload | header | u32 header length; parses the header into `out`
// and leaves the payload length in *payload_len.
template <class T, class F>
Status DecodeHeader(ByteSpan msg, F fields, T& out, size_t* payload_len) {
  if (msg.size() < 4) return InvalidArgument("message shorter than its trailer");
  const uint8_t* t = msg.data() + msg.size() - 4;
  const uint32_t header_len =
      uint32_t{t[0]} << 24 | uint32_t{t[1]} << 16 | uint32_t{t[2]} << 8 | t[3];
  if (header_len > msg.size() - 4 || header_len > (1u << 20)) {
    return InvalidArgument("message header length out of range");
  }
  *payload_len = msg.size() - 4 - header_len;
  if (*payload_len > kMaxPayload) return InvalidArgument("payload over the limit");
  try {
    SpanStream in(reinterpret_cast<const char*>(msg.data() + *payload_len), header_len);
    boost::archive::binary_iarchive ar(in, kArchiveFlags);
    fields(ar, out);
    if (in.peek() != std::char_traits<char>::eof()) {
      return InvalidArgument("message header has trailing bytes");
    }
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed message: ") + e.what());
  }
  return Status::Ok();
}

// A streambuf that appends to a byte vector: the archive writes straight
// into the message buffer, after the payload.
class BytesSink : public std::streambuf {
 public:
  explicit BytesSink(Bytes& out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out_.push_back(static_cast<uint8_t>(c));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.insert(out_.end(), reinterpret_cast<const uint8_t*>(s),
                reinterpret_cast<const uint8_t*>(s) + n);
    return n;
  }

 private:
  Bytes& out_;
};

// Appends the header and its length to `out`, which already holds the payload.
template <class F>
Result<Bytes> EncodeAfterPayload(Bytes out, F fields) {
  if (out.size() > kMaxPayload) return InvalidArgument("payload over the limit");
  const size_t payload_len = out.size();
  out.reserve(payload_len + kHeaderReserve);
  try {
    BytesSink sink(out);
    boost::archive::binary_oarchive ar(sink, kArchiveFlags);
    fields(ar);
  } catch (const std::exception& e) {
    return Internal(std::string("cannot encode message: ") + e.what());
  }
  const uint32_t header_len = static_cast<uint32_t>(out.size() - payload_len);
  const uint8_t t[4] = {uint8_t(header_len >> 24), uint8_t(header_len >> 16),
                        uint8_t(header_len >> 8), uint8_t(header_len)};
  out.insert(out.end(), t, t + 4);
  return out;
}

}  // namespace

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kHealth:
      return "health";
    case Op::kBeginFragment:
      return "begin-fragment";
    case Op::kFragmentData:
      return "fragment-data";
    case Op::kPrepare:
      return "prepare";
    case Op::kPublish:
      return "publish";
    case Op::kAbort:
      return "abort";
    case Op::kGetManifest:
      return "get-manifest";
    case Op::kListBackups:
      return "list-backups";
    case Op::kGetLeaves:
      return "get-leaves";
    case Op::kFetchUnits:
      return "fetch-units";
    case Op::kRelease:
      return "release";
    case Op::kGetAudit:
      return "get-audit";
    case Op::kGetCheckpoints:
      return "get-checkpoints";
    case Op::kReleaseReceipt:
      return "release-receipt";
    case Op::kGetCommit:
      return "get-commit";
    case Op::kGetWitnessed:
      return "get-witnessed";
  }
  return "unknown";
}

Status Response::ToStatus() const {
  if (code == 0) return Status::Ok();
  // A peer's words: escaped where they enter, so no later message that
  // quotes them can carry a control sequence to a terminal or a log.
  return Status(static_cast<StatusCode>(code), Printable(message));
}

Response Response::FromStatus(const Status& s) {
  Response r;
  r.code = static_cast<uint8_t>(s.code());
  r.message = s.message();
  return r;
}

Result<Bytes> EncodeRequest(Request&& r) {
  Bytes payload = std::move(r.payload);
  r.payload = Bytes();
  return EncodeAfterPayload(std::move(payload), [&](auto& ar) {
    uint8_t op = static_cast<uint8_t>(r.op);
    Fields(ar, r, op);
  });
}

Result<Bytes> EncodeRequest(const Request& r) {
  Request copy = r;
  return EncodeRequest(std::move(copy));
}

Result<Request> DecodeRequest(Bytes&& message) {
  Request r;
  size_t payload_len = 0;
  QV_RETURN_IF_ERROR(DecodeHeader(
      message,
      [](auto& ar, Request& req) {
        uint8_t op = 0;
        Fields(ar, req, op);
        req.op = static_cast<Op>(op);
      },
      r, &payload_len));
  if (r.version != kProtocolVersion) {
    return InvalidArgument("protocol version " + std::to_string(r.version) + " not supported");
  }
  const auto op = static_cast<uint8_t>(r.op);
  if (op < static_cast<uint8_t>(Op::kHealth) || op > static_cast<uint8_t>(Op::kGetCommit)) {
    return InvalidArgument("unknown request " + std::to_string(op));
  }
  message.resize(payload_len);  // the buffer becomes the payload, in place
  r.payload = std::move(message);
  return r;
}

Result<Request> DecodeRequest(ByteSpan message) {
  return DecodeRequest(Bytes(message.begin(), message.end()));
}

Result<Bytes> EncodeResponse(Response&& r) {
  Bytes payload = std::move(r.payload);
  r.payload = Bytes();
  return EncodeAfterPayload(std::move(payload), [&](auto& ar) { Fields(ar, r); });
}

Result<Bytes> EncodeResponse(const Response& r) {
  Response copy = r;
  return EncodeResponse(std::move(copy));
}

Result<Response> DecodeResponse(Bytes&& message) {
  Response r;
  size_t payload_len = 0;
  QV_RETURN_IF_ERROR(DecodeHeader(
      message, [](auto& ar, Response& resp) { Fields(ar, resp); }, r, &payload_len));
  if (r.code > static_cast<uint8_t>(StatusCode::kInternal)) {
    return InvalidArgument("unknown status code in response");
  }
  message.resize(payload_len);
  r.payload = std::move(message);
  return r;
}

Result<Response> DecodeResponse(ByteSpan message) {
  return DecodeResponse(Bytes(message.begin(), message.end()));
}

Bytes EncodeReceipt(const ReleaseReceipt& receipt) {
  WireWriter w;
  w.Fixed(receipt.request_id).U32(static_cast<uint32_t>(receipt.released_by.size()));
  for (const auto& id : receipt.released_by) w.Str(id);
  return w.Take();
}

Result<ReleaseReceipt> DecodeReceipt(ByteSpan data) {
  WireReader r(data);
  ReleaseReceipt out;
  QV_ASSIGN_OR_RETURN(out.request_id, r.Fixed<32>());
  QV_ASSIGN_OR_RETURN(uint32_t n, r.U32());
  if (n == 0 || n > 64) return InvalidArgument("receipt names " + std::to_string(n) + " nodes");
  for (uint32_t i = 0; i < n; ++i) {
    QV_ASSIGN_OR_RETURN(std::string id, r.Str(128));
    out.released_by.push_back(std::move(id));
  }
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return out;
}

}  // namespace qv
