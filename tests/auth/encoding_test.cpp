#include <algorithm>
#include <cctype>
#include <set>

#include <gtest/gtest.h>

#include <parley/auth/encoding.hpp>

namespace parley::auth {
namespace {

std::vector<std::uint8_t> bytesOf(std::string_view text) {
  return {text.begin(), text.end()};
}

// RFC 4648 §10 test vectors, with the padding base64url leaves out.
TEST(Base64Url, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64UrlEncode(bytesOf("")), "");
  EXPECT_EQ(base64UrlEncode(bytesOf("f")), "Zg");
  EXPECT_EQ(base64UrlEncode(bytesOf("fo")), "Zm8");
  EXPECT_EQ(base64UrlEncode(bytesOf("foo")), "Zm9v");
  EXPECT_EQ(base64UrlEncode(bytesOf("foob")), "Zm9vYg");
  EXPECT_EQ(base64UrlEncode(bytesOf("fooba")), "Zm9vYmE");
  EXPECT_EQ(base64UrlEncode(bytesOf("foobar")), "Zm9vYmFy");
}

TEST(Base64Url, UsesTheUrlSafeAlphabet) {
  // 0xFB 0xFF is "+/8=" in standard base64 (RFC 4648 §4); §5 replaces '+' and '/'.
  const std::vector<std::uint8_t> bytes = {0xFB, 0xFF};
  EXPECT_EQ(base64UrlEncode(bytes), "-_8");
  EXPECT_EQ(base64UrlDecode("-_8").value(), bytes);
}

TEST(Base64Url, DecodesWhatItEncodes) {
  std::vector<std::uint8_t> bytes;
  for (int size = 0; size < 70; ++size) {
    const std::string text = base64UrlEncode(bytes);
    const auto decoded = base64UrlDecode(text);
    ASSERT_TRUE(decoded) << size << ": " << decoded.error();
    EXPECT_EQ(*decoded, bytes);
    bytes.push_back(static_cast<std::uint8_t>(size * 37 + 11));
  }
}

TEST(Base64Url, RejectsAnythingButCanonicalUnpaddedText) {
  for (const char* text : {
           "Zg==",      // padding
           "Zm8=",      // padding
           "Z",         // 4n+1 characters cannot encode whole bytes
           "Zm9vY",     // likewise
           "Zh",        // 'h' leaves a non-zero unused bit: "Zg" is the one encoding of "f"
           "Zm9",       // '9' leaves non-zero unused bits: "Zm8" is the encoding of "fo"
           "Zm9v!",     // outside the alphabet
           "+/8",       // standard base64 characters
           "Zm9v Yg",   // whitespace
           "Zm9v\nYg",  // line break
       }) {
    EXPECT_FALSE(base64UrlDecode(text)) << text;
  }
  const std::string withNul("Zm\0v", 4);
  EXPECT_FALSE(base64UrlDecode(withNul));
  EXPECT_NE(base64UrlDecode("ab*d").error().find("offset 2"), std::string::npos);
}

TEST(RandomToken, HasTheRequestedEntropyInBase64Url) {
  EXPECT_EQ(randomToken().size(), 43u);  // 32 bytes
  EXPECT_EQ(randomToken(16).size(), 22u);
  EXPECT_EQ(randomToken(12).size(), 16u);
  EXPECT_EQ(randomToken(0), "");
  const std::string token = randomToken();
  ASSERT_TRUE(base64UrlDecode(token));
  EXPECT_EQ(base64UrlDecode(token)->size(), 32u);
  EXPECT_TRUE(std::all_of(token.begin(), token.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  }));
}

TEST(RandomToken, DoesNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i)
    EXPECT_TRUE(seen.insert(randomToken(16)).second);
}

}  // namespace
}  // namespace parley::auth
