#include "quorum/armor.h"

#include <sodium.h>

namespace qv {

namespace {

constexpr std::string_view kBegin = "-----BEGIN QUORUMVAULT ";
constexpr std::string_view kEnd = "-----END QUORUMVAULT ";
constexpr std::string_view kDashes = "-----";
constexpr size_t kColumns = 64;

std::string_view AsText(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace

std::string Armor(std::string_view kind, ByteSpan data) {
  if (sodium_init() < 0) return {};
  std::string b64(sodium_base64_encoded_len(data.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), data.data(), data.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  b64.resize(b64.size() - 1);  // the terminating NUL
  std::string out = std::string(kBegin) + std::string(kind) + std::string(kDashes) + "\n";
  for (size_t i = 0; i < b64.size(); i += kColumns) out += b64.substr(i, kColumns) + "\n";
  return out + std::string(kEnd) + std::string(kind) + std::string(kDashes) + "\n";
}

bool LooksArmored(ByteSpan file) { return AsText(file).find(kBegin) != std::string_view::npos; }

Result<Bytes> Dearmor(ByteSpan bytes, std::string_view kind) {
  if (bytes.size() > kMaxArmoredBytes) return InvalidArgument("armored file over 64 KiB");
  const std::string_view text = AsText(bytes);
  const std::string begin = std::string(kBegin) + std::string(kind) + std::string(kDashes);
  const std::string end = std::string(kEnd) + std::string(kind) + std::string(kDashes);
  const size_t b = text.find(begin);
  if (b == std::string_view::npos) {
    const size_t other = text.find(kBegin);
    if (other != std::string_view::npos) {
      const size_t close = text.find(kDashes, other + kBegin.size());
      return InvalidArgument(
          "armored " +
          std::string(text.substr(other + kBegin.size(),
                                  std::min<size_t>(close, other + 64) - other - kBegin.size())) +
          " where an armored " + std::string(kind) + " belongs");
    }
    return InvalidArgument("no " + begin + " line");
  }
  if (text.find(kBegin, b + 1) != std::string_view::npos) {
    return InvalidArgument("more than one armored block");
  }
  const size_t body = b + begin.size();
  const size_t e = text.find(end, body);
  if (e == std::string_view::npos) return InvalidArgument("no " + end + " line");
  const std::string_view b64 = text.substr(body, e - body);
  Bytes out(b64.size() / 4 * 3 + 3);
  size_t len = 0;
  const char* stop = nullptr;
  if (sodium_init() < 0 ||
      sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), " \t\r\n", &len, &stop,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      stop != b64.data() + b64.size()) {
    return InvalidArgument("the armored " + std::string(kind) + " is not valid base64");
  }
  out.resize(len);
  return out;
}

}  // namespace qv
