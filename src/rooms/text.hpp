// Validation of the human-written strings of the protocol (names, chat text), shared by the
// parser and the Room so that a message built in code is held to the same rules as one read
// from the wire.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace parley::rooms::text {

// Whether JSON `text` nests objects and arrays at most maxDepth deep (brackets outside strings
// are counted; exact for valid JSON, for anything else the parser reports the real problem).
bool jsonNestingWithin(std::string_view text, int maxDepth);

// RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF.
bool validUtf8(std::string_view text);
// Code points of valid UTF-8 (counts every byte that does not continue a sequence).
std::size_t codePoints(std::string_view text);
// Without leading and trailing ASCII whitespace.
std::string_view trimmed(std::string_view text);

// A display name: trimmed, valid UTF-8, at most kMaxNameChars, no control characters (they
// would reach other participants' screens and the audit log). Empty only when allowEmpty.
std::optional<std::string> displayName(std::string_view raw, bool allowEmpty);
// Chat text: trimmed, valid UTF-8, 1 to kMaxChatChars, no control characters except tab and
// line breaks.
std::optional<std::string> chatText(std::string_view raw);

}  // namespace parley::rooms::text
