#include "base/text.h"

#include <cstdint>
#include <cstdio>

namespace qv {

namespace {

// Decodes one UTF-8 sequence at s[i]; returns its length (1..4) and sets
// *cp, or 0 if the bytes there are not a well-formed sequence.
size_t DecodeOne(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t c = b(0);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len = 0;
  uint32_t v = 0, min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

// Characters that move the cursor, recolour or reorder what a terminal
// shows, or start a new line.
bool Hazardous(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E ||
         cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
         cp == 0x2028 || cp == 0x2029;
}

std::string Hex(const char* format, uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

Status CheckDisplayText(std::string_view field, std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = DecodeOne(text, i, &cp);
    if (len == 0) {
      return InvalidArgument(std::string(field) + ": invalid UTF-8 at byte " + std::to_string(i));
    }
    if (Hazardous(cp)) {
      return InvalidArgument(std::string(field) + ": control character " + Hex("U+%04X", cp) +
                             " at byte " + std::to_string(i) +
                             " (not allowed in text people read)");
    }
    i += len;
  }
  return Status::Ok();
}

std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = DecodeOne(text, i, &cp);
    if (len == 0) {
      out += Hex("\\x%02x", static_cast<uint8_t>(text[i]));
      ++i;
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == 0x1B) {
      out += "\\e";
    } else if (cp < 0x80 && Hazardous(cp)) {
      out += Hex("\\x%02x", cp);
    } else if (Hazardous(cp)) {
      out += Hex("\\u{%04X}", cp);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace qv
