#include "base/json.h"

namespace qv {

JsonWriter& JsonWriter::Add(nlohmann::ordered_json v) {
  if (open_.empty()) {
    root_ = std::move(v);
    return *this;
  }
  nlohmann::ordered_json& parent = *open_.back();
  if (parent.is_array()) {
    parent.push_back(std::move(v));
  } else {
    parent[key_] = std::move(v);
  }
  return *this;
}

JsonWriter& JsonWriter::BeginObject() {
  Add(nlohmann::ordered_json::object());
  nlohmann::ordered_json& self = open_.empty()              ? root_
                                 : open_.back()->is_array() ? open_.back()->back()
                                                            : (*open_.back())[key_];
  open_.push_back(&self);
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Add(nlohmann::ordered_json::array());
  nlohmann::ordered_json& self = open_.empty()              ? root_
                                 : open_.back()->is_array() ? open_.back()->back()
                                                            : (*open_.back())[key_];
  open_.push_back(&self);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  if (!open_.empty()) open_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::EndArray() { return EndObject(); }

JsonWriter& JsonWriter::Key(std::string_view key) {
  key_ = std::string(key);
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view v) { return Add(std::string(v)); }
JsonWriter& JsonWriter::Int(int64_t v) { return Add(v); }
JsonWriter& JsonWriter::UInt(uint64_t v) { return Add(v); }
JsonWriter& JsonWriter::Double(double v) { return Add(v); }
JsonWriter& JsonWriter::Bool(bool v) { return Add(v); }

const std::string& JsonWriter::str() const {
  out_ = root_.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return out_;
}

}  // namespace qv
