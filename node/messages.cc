#include "node/messages.h"

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/stream.hpp>
#include <boost/serialization/binary_object.hpp>
#include <boost/serialization/split_member.hpp>
#include <sstream>

namespace qv {

namespace {

constexpr auto kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

// A byte string with a hard limit, checked before allocation.
template <size_t Max>
struct BoundedBytes {
  Bytes* v;
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

template <size_t Max>
struct BoundedString {
  std::string* v;
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
    if (n > Max) throw std::length_error("string length over limit");
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
  BoundedBytes<kMaxPayload> p1{&r.payload}, p2{&r.payload2};
  ar& r.version& op;
  ar& boost::serialization::make_binary_object(r.backup_id.data(), r.backup_id.size());
  ar& r.fragment& r.a& r.b& p1& p2;
}

template <class Ar>
void Fields(Ar& ar, Response& r) {
  BoundedString<4096> msg{&r.message}, node{&r.node_id};
  BoundedBytes<kMaxPayload> p{&r.payload};
  BoundedIds ids{&r.ids};
  ar& r.code& msg& p& ids& node;
}

// Reads from a span without copying it.
using SpanStream = boost::iostreams::stream<boost::iostreams::array_source>;

template <class T, class F>
Result<T> Decode(ByteSpan bytes, F fields) {
  T out;
  try {
    SpanStream in(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    boost::archive::binary_iarchive ar(in, kArchiveFlags);
    fields(ar, out);
    if (in.peek() != std::char_traits<char>::eof()) {
      return InvalidArgument("message has trailing bytes");
    }
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed message: ") + e.what());
  }
  return out;
}

// A streambuf that appends to a byte vector: the archive writes straight
// into the message buffer, with no intermediate string.
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

template <class F>
Result<Bytes> Encode(F fields, size_t reserve) {
  try {
    Bytes out;
    out.reserve(reserve);
    {
      BytesSink sink(out);
      boost::archive::binary_oarchive ar(sink, kArchiveFlags);
      fields(ar);
    }
    return out;
  } catch (const std::exception& e) {
    return Internal(std::string("cannot encode message: ") + e.what());
  }
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
    case Op::kFetchShare:
      return "fetch-share";
  }
  return "unknown";
}

Status Response::ToStatus() const {
  if (code == 0) return Status::Ok();
  return Status(static_cast<StatusCode>(code), message);
}

Response Response::FromStatus(const Status& s) {
  Response r;
  r.code = static_cast<uint8_t>(s.code());
  r.message = s.message();
  return r;
}

Result<Bytes> EncodeRequest(const Request& r) {
  return Encode(
      [&](auto& ar) {
        // Fields() takes non-const refs (shared with loading); saving reads only.
        Request& mut = const_cast<Request&>(r);
        uint8_t op = static_cast<uint8_t>(r.op);
        Fields(ar, mut, op);
      },
      r.payload.size() + r.payload2.size() + 128);
}

Result<Request> DecodeRequest(ByteSpan bytes) {
  auto r = Decode<Request>(bytes, [](auto& ar, Request& req) {
    uint8_t op = 0;
    Fields(ar, req, op);
    req.op = static_cast<Op>(op);
  });
  if (!r.ok()) return r;
  if (r->version != kProtocolVersion) {
    return InvalidArgument("protocol version " + std::to_string(r->version) + " not supported");
  }
  const auto op = static_cast<uint8_t>(r->op);
  if (op < static_cast<uint8_t>(Op::kHealth) || op > static_cast<uint8_t>(Op::kFetchShare)) {
    return InvalidArgument("unknown request " + std::to_string(op));
  }
  return r;
}

Result<Bytes> EncodeResponse(const Response& r) {
  return Encode(
      [&](auto& ar) {
        Response& mut = const_cast<Response&>(r);
        Fields(ar, mut);
      },
      r.payload.size() + r.message.size() + 16 * r.ids.size() + 128);
}

Result<Response> DecodeResponse(ByteSpan bytes) {
  auto r = Decode<Response>(bytes, [](auto& ar, Response& resp) { Fields(ar, resp); });
  if (!r.ok()) return r;
  if (r->code > static_cast<uint8_t>(StatusCode::kInternal)) {
    return InvalidArgument("unknown status code in response");
  }
  return r;
}

}  // namespace qv
