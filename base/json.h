// Machine-readable CLI output (--json), built on nlohmann::json: escaping,
// number formatting and UTF-8 handling are the library's. A byte string
// that is not valid UTF-8 (a file name from a user's folder may be one) is
// written with U+FFFD for the bad bytes, so the output always parses.
// Builds one value; not thread-safe.
#ifndef QV_BASE_JSON_H_
#define QV_BASE_JSON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view v);
  JsonWriter& Int(int64_t v);
  JsonWriter& UInt(uint64_t v);
  JsonWriter& Double(double v);
  JsonWriter& Bool(bool v);

  JsonWriter& Field(std::string_view k, std::string_view v) { return Key(k).String(v); }
  JsonWriter& Field(std::string_view k, const char* v) { return Key(k).String(v); }
  JsonWriter& Field(std::string_view k, uint64_t v) { return Key(k).UInt(v); }
  JsonWriter& Field(std::string_view k, double v) { return Key(k).Double(v); }
  JsonWriter& Field(std::string_view k, bool v) { return Key(k).Bool(v); }

  // The value written so far, serialized.
  const std::string& str() const;

 private:
  JsonWriter& Add(nlohmann::ordered_json v);
  nlohmann::ordered_json root_;
  std::vector<nlohmann::ordered_json*> open_;  // containers begun and not yet ended
  std::string key_;
  mutable std::string out_;
};

}  // namespace qv

#endif  // QV_BASE_JSON_H_
