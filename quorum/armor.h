// ASCII armor for request and approval files (issue 17), so they can be
// pasted into a ticket or a chat and read back byte-exact:
//
//   -----BEGIN QUORUMVAULT REQUEST-----
//   <base64 of the file's bytes: RFC 4648 standard alphabet, padded,
//    64 characters a line>
//   -----END QUORUMVAULT REQUEST-----
//
// Dearmor takes the one block of that kind anywhere in the text (a saved
// chat message around it is fine), ignores whitespace inside it (line
// ends, indentation) and refuses anything else: another kind, two blocks,
// a missing end, a character outside base64. The armored bytes are the
// same signed bytes: armor adds no trust and removes none. Base64 is
// libsodium's. Pure functions.
#ifndef QV_QUORUM_ARMOR_H_
#define QV_QUORUM_ARMOR_H_

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace qv {

inline constexpr std::string_view kArmorRequest = "REQUEST";
inline constexpr std::string_view kArmorApproval = "APPROVAL";
// The largest armored file read (a request or approval is at most 8 KiB).
inline constexpr size_t kMaxArmoredBytes = 64 * 1024;

std::string Armor(std::string_view kind, ByteSpan data);
// Whether `file` holds an armor block of any kind.
bool LooksArmored(ByteSpan file);
Result<Bytes> Dearmor(ByteSpan text, std::string_view kind);

}  // namespace qv

#endif  // QV_QUORUM_ARMOR_H_
