#include "text.hpp"
#include <algorithm>
#include <cstdint>

#include <parley/rooms/protocol.hpp>

namespace parley::rooms::text {
namespace {

bool isAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool isControl(char c, bool allowLineBreaks) {
  const auto byte = static_cast<unsigned char>(c);
  if (allowLineBreaks && (c == '\t' || c == '\n' || c == '\r')) return false;
  return byte < 0x20 || byte == 0x7F;
}

}  // namespace

bool jsonNestingWithin(std::string_view text, int maxDepth) {
  int depth = 0;
  bool inString = false;
  bool escaped = false;
  for (const char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      if (++depth > maxDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

bool validUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<std::uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t codePoint = 0;
    if ((lead & 0xE0) == 0xC0) {
      length = 2;
      codePoint = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      codePoint = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      codePoint = lead & 0x07;
    } else {
      return false;  // a continuation byte without a lead, or 0xF8..0xFF
    }
    if (text.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<std::uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      codePoint = (codePoint << 6) | (next & 0x3F);
    }
    static constexpr std::uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (codePoint < kSmallest[length]) return false;               // overlong
    if (codePoint >= 0xD800 && codePoint <= 0xDFFF) return false;  // surrogate
    if (codePoint > 0x10FFFF) return false;
    i += length;
  }
  return true;
}

std::size_t codePoints(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<std::uint8_t>(c) & 0xC0) != 0x80;
  }));
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && isAsciiSpace(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && isAsciiSpace(text.back()))
    text.remove_suffix(1);
  return text;
}

std::optional<std::string> displayName(std::string_view raw, bool allowEmpty) {
  const std::string_view name = trimmed(raw);
  if (name.empty() && !allowEmpty) return std::nullopt;
  if (!validUtf8(name) || codePoints(name) > kMaxNameChars) return std::nullopt;
  if (std::any_of(name.begin(), name.end(), [](char c) { return isControl(c, false); })) {
    return std::nullopt;
  }
  return std::string(name);
}

std::optional<std::string> chatText(std::string_view raw) {
  const std::string_view text = trimmed(raw);
  if (text.empty() || !validUtf8(text) || codePoints(text) > kMaxChatChars) return std::nullopt;
  if (std::any_of(text.begin(), text.end(), [](char c) { return isControl(c, true); })) {
    return std::nullopt;
  }
  return std::string(text);
}

}  // namespace parley::rooms::text
