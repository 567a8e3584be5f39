// Text that came from outside (request fields, file names, audit details,
// node messages) and is shown to a person on a terminal or in a log.
//
// CheckDisplayText decides whether a string may go into a signed,
// human-readable record: valid UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF) and none of the characters that change
// how a terminal shows the text around them: C0 controls (tab and newline
// included), DEL, C1 controls, the bidirectional overrides, isolates and
// marks (Unicode TR #9; the "Trojan Source" trick), and the line and
// paragraph separators. The error names the field and the byte offset.
//
// Printable returns text safe to print: the same characters where they are
// harmless, and a visible escape for everything CheckDisplayText refuses
// (\n, \t, \r, \e, \xNN for other bytes, \u{NNNN} for the Unicode ones),
// with a backslash itself doubled, so no two inputs print alike. Pure
// functions; thread-safe.
#ifndef QV_BASE_TEXT_H_
#define QV_BASE_TEXT_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace qv {

Status CheckDisplayText(std::string_view field, std::string_view text);
std::string Printable(std::string_view text);

}  // namespace qv

#endif  // QV_BASE_TEXT_H_
