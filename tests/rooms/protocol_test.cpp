// The signaling wire format (docs/api.md, "Signaling"): every client message type, and what
// the parser refuses without throwing.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <parley/rooms/protocol.hpp>

namespace parley::rooms {
namespace {

using nlohmann::json;

ClientMessage parsed(std::string_view text) {
  auto result = parseClientMessage(text);
  EXPECT_TRUE(result) << text << " -> " << (result ? "" : result.error().message);
  return result ? *result : ClientMessage{Leave{}};
}

ProtocolError refused(std::string_view text) {
  auto result = parseClientMessage(text);
  EXPECT_FALSE(result) << text << " was accepted";
  return result ? ProtocolError{} : result.error();
}

void expectBadField(std::string_view text, std::string_view field, std::string_view type) {
  const ProtocolError error = refused(text);
  EXPECT_EQ(error.code, "bad_field") << text;
  EXPECT_NE(error.message.find("'" + std::string(field) + "'"), std::string::npos)
      << text << " -> " << error.message;
  EXPECT_EQ(error.ref, type) << text;
}

// --- every type ----------------------------------------------------------------------------

TEST(ProtocolTest, ParsesHello) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"hello","token":"tok.en","name":"  Ann Lee "})"),
            ClientMessage(Hello{"tok.en", "Ann Lee"}));
}

TEST(ProtocolTest, ParsesJoinWithAndWithoutFields) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"join"})"), ClientMessage(Join{}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"join","name":""})"), ClientMessage(Join{}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"join","name":null,"media":null})"), ClientMessage(Join{}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"join","name":" Bo ","media":{"audio":true,"video":false}})"),
            ClientMessage(Join{"Bo", MediaState{true, false, false}}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"join","media":{"audio":false,"video":true,"screen":true}})"),
            ClientMessage(Join{"", MediaState{false, true, true}}));
}

TEST(ProtocolTest, ParsesSignalAndReserialisesDataCompactly) {
  const auto message = parsed(
      R"({"v":1, "type":"signal", "to":"p2",
          "data": { "description" : {"type":"offer", "sdp":"v=0\r\n"} } })");
  const auto& signal = std::get<Signal>(message);
  EXPECT_EQ(signal.to, "p2");
  EXPECT_EQ(signal.dataJson, R"({"description":{"sdp":"v=0\r\n","type":"offer"}})");
  EXPECT_EQ(std::get<Signal>(parsed(R"({"v":1,"type":"signal","to":"p2","data":{}})")).dataJson,
            "{}");
}

TEST(ProtocolTest, ParsesChatTrimmed) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"chat","text":"  hello\nworld\t "})"),
            ClientMessage(Chat{"hello\nworld"}));
}

TEST(ProtocolTest, ParsesMedia) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"media","audio":true,"video":false,"screen":true})"),
            ClientMessage(Media{MediaState{true, false, true}}));
}

TEST(ProtocolTest, ParsesHostActions) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"admit","id":"g1"})"), ClientMessage(Admit{"g1"}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"reject","id":"g1"})"), ClientMessage(Reject{"g1"}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"remove","id":"g1"})"), ClientMessage(Remove{"g1"}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"mute","id":"g1","kind":"audio"})"),
            ClientMessage(Mute{"g1", "audio"}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"end"})"), ClientMessage(End{}));
}

TEST(ProtocolTest, ParsesLeaveAndPing) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"leave"})"), ClientMessage(Leave{}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"ping"})"), ClientMessage(Ping{}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"ping","t":1732460701123.5})"),
            ClientMessage(Ping{1732460701123.5}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"ping","t":-3})"), ClientMessage(Ping{-3.0}));
}

TEST(ProtocolTest, IgnoresFieldsATypeDoesNotDefine) {
  EXPECT_EQ(parsed(R"({"v":1,"type":"end","reason":"bye","extra":{"x":[1,2]}})"),
            ClientMessage(End{}));
  EXPECT_EQ(parsed(R"({"v":1,"type":"admit","id":"g1","note":7})"), ClientMessage(Admit{"g1"}));
}

TEST(ProtocolTest, TypeNamesAreTheWireTypes) {
  EXPECT_EQ(typeName(Hello{}), "hello");
  EXPECT_EQ(typeName(Join{}), "join");
  EXPECT_EQ(typeName(Signal{}), "signal");
  EXPECT_EQ(typeName(Chat{}), "chat");
  EXPECT_EQ(typeName(Media{}), "media");
  EXPECT_EQ(typeName(Admit{}), "admit");
  EXPECT_EQ(typeName(Reject{}), "reject");
  EXPECT_EQ(typeName(Remove{}), "remove");
  EXPECT_EQ(typeName(Mute{}), "mute");
  EXPECT_EQ(typeName(End{}), "end");
  EXPECT_EQ(typeName(Leave{}), "leave");
  EXPECT_EQ(typeName(Ping{}), "ping");
}

TEST(ProtocolTest, SerialisedMessagesParseBackUnchanged) {
  const ClientMessage messages[] = {
      Hello{"token", "Ann"},
      Join{},
      Join{"Bo", MediaState{true, true, false}},
      Signal{"p2", R"({"candidate":{"candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host"}})"},
      Chat{"hi\nthere"},
      Media{MediaState{false, true, true}},
      Admit{"g1"},
      Reject{"g2"},
      Remove{"g3"},
      Mute{"g1", "audio"},
      End{},
      Leave{},
      Ping{},
      Ping{0.25},
  };
  for (const auto& message : messages) {
    const std::string text = serializeClientMessage(message);
    EXPECT_EQ(json::parse(text)["v"], 1) << text;
    EXPECT_EQ(parsed(text), message) << text;
  }
}

// --- refused ---------------------------------------------------------------------------------

TEST(ProtocolTest, RefusesTextThatIsNotJson) {
  for (const std::string_view text : {"", "{", "{\"v\":1,", "hello", "{\"v\":1}}", "{'v':1}",
                                      "{\"v\":1,\"type\":\"end\"} trailing"}) {
    const auto error = refused(text);
    EXPECT_EQ(error.code, "bad_json") << text;
    EXPECT_TRUE(error.ref.empty());
  }
}

TEST(ProtocolTest, RefusesJsonThatIsNotAnObject) {
  for (const std::string_view text :
       {"[]", "[{\"v\":1,\"type\":\"end\"}]", "\"end\"", "1", "null", "true"}) {
    EXPECT_EQ(refused(text).code, "bad_json") << text;
  }
}

TEST(ProtocolTest, RefusesInvalidUtf8) {
  // A raw 0xFF, an overlong '/' (C0 AF), a truncated sequence, and unpaired surrogate escapes.
  const std::string texts[] = {
      "{\"v\":1,\"type\":\"chat\",\"text\":\"a\xFF\"}",
      "{\"v\":1,\"type\":\"chat\",\"text\":\"\xC0\xAF\"}",
      "{\"v\":1,\"type\":\"chat\",\"text\":\"\xE2\x82\"}",
      R"({"v":1,"type":"chat","text":"\ud800"})",
      R"({"v":1,"type":"chat","text":"\udc00x"})",
  };
  for (const auto& text : texts)
    EXPECT_EQ(refused(text).code, "bad_json") << text;
  // A paired surrogate escape is fine: U+1F600.
  EXPECT_EQ(parsed(R"({"v":1,"type":"chat","text":"\ud83d\ude00"})"),
            ClientMessage(Chat{"\xF0\x9F\x98\x80"}));
}

TEST(ProtocolTest, RefusesDeepNestingBeforeParsing) {
  std::string deep = R"({"v":1,"type":"signal","to":"p2","data":)";
  for (int i = 0; i < 40; ++i)
    deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 40; ++i)
    deep += "}";
  deep += "}";
  EXPECT_EQ(refused(deep).code, "bad_json");
  EXPECT_EQ(refused(std::string(100000, '[')).code, "bad_json");
  // Brackets inside strings do not count.
  const std::string quoted =
      R"({"v":1,"type":"chat","text":")" + std::string(100, '[') + R"(\"{{{"})";
  EXPECT_EQ(parsed(quoted), ClientMessage(Chat{std::string(100, '[') + "\"{{{"}));
  // Exactly kMaxNestingDepth levels: the message object and 31 inside it.
  std::string limit = R"({"v":1,"type":"signal","to":"p2","data":)";
  for (int i = 0; i < kMaxNestingDepth - 1; ++i)
    limit += "{\"a\":";
  limit += "1";
  for (int i = 0; i < kMaxNestingDepth; ++i)
    limit += "}";
  EXPECT_TRUE(parseClientMessage(limit));
}

TEST(ProtocolTest, RefusesAnotherVersion) {
  for (const std::string_view text :
       {R"({"type":"end"})", R"({"v":2,"type":"end"})", R"({"v":0,"type":"end"})",
        R"({"v":"1","type":"end"})", R"({"v":1.0,"type":"end"})", R"({"v":null,"type":"end"})",
        R"({"v":18446744073709551617,"type":"end"})", R"({"v":-1,"type":"end"})"}) {
    const auto error = refused(text);
    EXPECT_EQ(error.code, "bad_version") << text;
    EXPECT_EQ(error.ref, "end") << text;
  }
  // The version is checked before the type is looked at.
  EXPECT_EQ(refused(R"({"v":2,"type":"future-thing"})").code, "bad_version");
}

TEST(ProtocolTest, RefusesUnknownOrMissingType) {
  const auto unknown = refused(R"({"v":1,"type":"dance"})");
  EXPECT_EQ(unknown.code, "unknown_type");
  EXPECT_EQ(unknown.ref, "dance");
  // A long type is not echoed back.
  const auto longType = refused(R"({"v":1,"type":")" + std::string(200, 'x') + "\"}");
  EXPECT_EQ(longType.code, "unknown_type");
  EXPECT_TRUE(longType.ref.empty());
  EXPECT_EQ(refused(R"({"v":1,"type":"HELLO"})").code, "unknown_type");
  expectBadField(R"({"v":1})", "type", "");
  expectBadField(R"({"v":1,"type":7})", "type", "");
  expectBadField(R"({"v":1,"type":["end"]})", "type", "");
}

TEST(ProtocolTest, RefusesBadHelloFields) {
  expectBadField(R"({"v":1,"type":"hello","name":"Ann"})", "token", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":"","name":"Ann"})", "token", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":42,"name":"Ann"})", "token", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":")" + std::string(kMaxTokenBytes + 1, 'a') +
                     R"(","name":"Ann"})",
                 "token", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":"t"})", "name", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":"t","name":"   "})", "name", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":"t","name":"a\u0007b"})", "name", "hello");
  expectBadField(R"({"v":1,"type":"hello","token":"t","name":{"first":"Ann"}})", "name", "hello");
}

TEST(ProtocolTest, ErrorsNeverEchoTheToken) {
  const auto error = refused(R"({"v":1,"type":"hello","token":"secret-token-123","name":""})");
  EXPECT_EQ(error.message.find("secret-token-123"), std::string::npos);
  EXPECT_EQ(errorMessage(error).find("secret-token-123"), std::string::npos);
}

TEST(ProtocolTest, NamesAreLimitedToSixtyCharacters) {
  // 60 two-byte characters are fine, 61 are not.
  std::string sixty;
  for (int i = 0; i < 60; ++i)
    sixty += "\xC3\xA9";
  EXPECT_EQ(std::get<Join>(parsed(R"({"v":1,"type":"join","name":")" + sixty + "\"}")).name, sixty);
  expectBadField(R"({"v":1,"type":"join","name":")" + sixty + "e\"}", "name", "join");
}

TEST(ProtocolTest, RefusesBadJoinFields) {
  expectBadField(R"({"v":1,"type":"join","name":5})", "name", "join");
  expectBadField(R"({"v":1,"type":"join","name":"tab\there"})", "name", "join");
  expectBadField(R"({"v":1,"type":"join","media":true})", "media", "join");
  expectBadField(R"({"v":1,"type":"join","media":{"audio":true}})", "media.video", "join");
  expectBadField(R"({"v":1,"type":"join","media":{"audio":1,"video":true}})", "media.audio",
                 "join");
  expectBadField(R"({"v":1,"type":"join","media":{"audio":true,"video":true,"screen":"no"}})",
                 "media.screen", "join");
}

TEST(ProtocolTest, RefusesBadSignalFields) {
  expectBadField(R"({"v":1,"type":"signal","data":{}})", "to", "signal");
  expectBadField(R"({"v":1,"type":"signal","to":"","data":{}})", "to", "signal");
  expectBadField(R"({"v":1,"type":"signal","to":12,"data":{}})", "to", "signal");
  expectBadField(
      R"({"v":1,"type":"signal","to":")" + std::string(kMaxIdBytes + 1, 'p') + R"(","data":{}})",
      "to", "signal");
  expectBadField(R"({"v":1,"type":"signal","to":"p2"})", "data", "signal");
  // data must be an object: not an array, a string, a number or null.
  expectBadField(R"({"v":1,"type":"signal","to":"p2","data":[]})", "data", "signal");
  expectBadField(R"({"v":1,"type":"signal","to":"p2","data":"{}"})", "data", "signal");
  expectBadField(R"({"v":1,"type":"signal","to":"p2","data":3})", "data", "signal");
  expectBadField(R"({"v":1,"type":"signal","to":"p2","data":null})", "data", "signal");
}

TEST(ProtocolTest, ChatTextIsOneToTwoThousandCharacters) {
  expectBadField(R"({"v":1,"type":"chat"})", "text", "chat");
  expectBadField(R"({"v":1,"type":"chat","text":""})", "text", "chat");
  expectBadField(R"({"v":1,"type":"chat","text":" \n\t "})", "text", "chat");
  expectBadField(R"({"v":1,"type":"chat","text":["hi"]})", "text", "chat");
  expectBadField(R"({"v":1,"type":"chat","text":"nul\u0000byte"})", "text", "chat");
  // Characters, not bytes: 2000 three-byte characters pass, one more does not.
  std::string longest;
  for (int i = 0; i < 2000; ++i)
    longest += "\xE2\x82\xAC";  // U+20AC EURO SIGN
  EXPECT_EQ(std::get<Chat>(parsed(R"({"v":1,"type":"chat","text":")" + longest + "\"}")).text,
            longest);
  expectBadField(R"({"v":1,"type":"chat","text":")" + longest + "x\"}", "text", "chat");
}

TEST(ProtocolTest, RefusesBadMediaFields) {
  expectBadField(R"({"v":1,"type":"media","video":true,"screen":false})", "audio", "media");
  expectBadField(R"({"v":1,"type":"media","audio":true,"screen":false})", "video", "media");
  expectBadField(R"({"v":1,"type":"media","audio":true,"video":true})", "screen", "media");
  expectBadField(R"({"v":1,"type":"media","audio":"yes","video":true,"screen":false})", "audio",
                 "media");
  expectBadField(R"({"v":1,"type":"media","audio":true,"video":0,"screen":false})", "video",
                 "media");
}

TEST(ProtocolTest, RefusesBadTargetIds) {
  for (const std::string type : {"admit", "reject", "remove", "mute"}) {
    const std::string kind = type == "mute" ? R"(,"kind":"audio")" : "";
    expectBadField(R"({"v":1,"type":")" + type + "\"" + kind + "}", "id", type);
    expectBadField(R"({"v":1,"type":")" + type + R"(","id":"")" + kind + "}", "id", type);
    expectBadField(R"({"v":1,"type":")" + type + R"(","id":["g1"])" + kind + "}", "id", type);
    expectBadField(R"({"v":1,"type":")" + type + R"(","id":1)" + kind + "}", "id", type);
  }
}

TEST(ProtocolTest, MuteKindIsAudio) {
  expectBadField(R"({"v":1,"type":"mute","id":"g1"})", "kind", "mute");
  expectBadField(R"({"v":1,"type":"mute","id":"g1","kind":"video"})", "kind", "mute");
  expectBadField(R"({"v":1,"type":"mute","id":"g1","kind":true})", "kind", "mute");
}

TEST(ProtocolTest, PingTimeIsAFiniteNumber) {
  expectBadField(R"({"v":1,"type":"ping","t":"now"})", "t", "ping");
  expectBadField(R"({"v":1,"type":"ping","t":[1]})", "t", "ping");
  // Out of double range: nlohmann refuses the text outright (it would come back as null in the
  // pong otherwise).
  EXPECT_EQ(refused(R"({"v":1,"type":"ping","t":1e400})").code, "bad_json");
  EXPECT_EQ(refused(R"({"v":1,"type":"ping","t":-1e400})").code, "bad_json");
  EXPECT_EQ(refused(R"({"v":1e400,"type":"end"})").code, "bad_json");
  // A huge integer is still a finite double.
  const auto ping =
      std::get<Ping>(parsed(R"({"v":1,"type":"ping","t":123456789012345678901234567890})"));
  ASSERT_TRUE(ping.t);
  EXPECT_DOUBLE_EQ(*ping.t, 1.2345678901234568e29);
}

// --- server messages built outside a room ----------------------------------------------------

TEST(ProtocolTest, BuildsErrorPongAndShutdown) {
  EXPECT_EQ(json::parse(errorMessage({"bad_field", "'to' must be a string", "signal"})),
            json::parse(R"({"v":1,"type":"error","code":"bad_field",
                            "message":"'to' must be a string","ref":"signal"})"));
  // ref is left out when unknown.
  EXPECT_EQ(json::parse(errorMessage({"bad_json", "the message is not valid JSON", ""})),
            json::parse(R"({"v":1,"type":"error","code":"bad_json",
                            "message":"the message is not valid JSON"})"));
  EXPECT_EQ(json::parse(pongMessage(12.5)), json::parse(R"({"v":1,"type":"pong","t":12.5})"));
  EXPECT_EQ(json::parse(pongMessage(std::nullopt)), json::parse(R"({"v":1,"type":"pong"})"));
  EXPECT_EQ(json::parse(shutdownMessage(5000)),
            json::parse(R"({"v":1,"type":"shutdown","retryAfterMs":5000})"));
}

TEST(ProtocolTest, ErrorMessagesSurviveInvalidUtf8BuiltInCode) {
  // Only code can put invalid UTF-8 here (the parser refuses it); it must not throw.
  const json error = json::parse(errorMessage({"bad_field", "bad \xFF byte", "\xC0"}));
  EXPECT_EQ(error["code"], "bad_field");
}

TEST(ProtocolTest, CloseCodesAreThoseOfTheSpec) {
  EXPECT_EQ(static_cast<int>(CloseCode::GoingAway), 1001);
  EXPECT_EQ(static_cast<int>(CloseCode::TooBig), 1009);
  EXPECT_EQ(static_cast<int>(CloseCode::Replaced), 4000);
  EXPECT_EQ(static_cast<int>(CloseCode::Removed), 4001);
  EXPECT_EQ(static_cast<int>(CloseCode::Ended), 4002);
  EXPECT_EQ(static_cast<int>(CloseCode::Rejected), 4003);
  EXPECT_EQ(static_cast<int>(CloseCode::TooSlow), 4008);
  EXPECT_EQ(static_cast<int>(CloseCode::NotAuthenticated), 4401);
  EXPECT_EQ(static_cast<int>(CloseCode::Forbidden), 4403);
  EXPECT_EQ(static_cast<int>(CloseCode::RoomFull), 4409);
}

}  // namespace
}  // namespace parley::rooms
