#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <parley/base/log.hpp>

namespace parley::log {
namespace {

// Loggers are process-wide, so each test configures what it needs and uses its own module
// names; output is read back from the real stderr sink.
class LogTest : public ::testing::Test {
 protected:
  void TearDown() override { configure(Options{}); }

  template <typename Fn>
  static std::string captureStderr(Fn&& fn) {
    ::testing::internal::CaptureStderr();
    fn();
    return ::testing::internal::GetCapturedStderr();
  }
};

TEST_F(LogTest, TextLineHasTimestampPaddedLevelAndModule) {
  configure(Options{});
  const std::string out = captureStderr([] {
    get("text1")->info("hello {}", 42);
    get("text1")->warn("careful");
  });
  const std::regex line(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info  \[text1\] hello 42\n)"
                        R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} warn  \[text1\] careful\n)");
  EXPECT_TRUE(std::regex_match(out, line)) << out;
}

TEST_F(LogTest, JsonLineIsOneObjectWithUtcTimestamp) {
  configure(Options{.level = "info", .format = Format::Json, .moduleLevels = {}});
  const std::string out = captureStderr([] { get("json1")->error("plain"); });
  const std::regex line(
      R"(\{"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"error","module":"json1",)"
      R"("msg":"plain"\}\n)");
  EXPECT_TRUE(std::regex_match(out, line)) << out;
}

TEST_F(LogTest, JsonEscapesQuotesBackslashesAndControlCharacters) {
  configure(Options{.level = "info", .format = Format::Json, .moduleLevels = {}});
  const std::string out = captureStderr(
      [] { get("json2")->info("say \"hi\" C:\\dir\nnext\tcol\r\b\f\x01\x1f\x7f end"); });
  EXPECT_NE(out.find(R"("msg":"say \"hi\" C:\\dir\nnext\tcol\r\b\f\u0001\u001f\u007f end"})"),
            std::string::npos)
      << out;
  // Exactly one line: the embedded newline must not split the record.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(LogTest, JsonKeepsUtf8AndReplacesInvalidBytes) {
  configure(Options{.level = "info", .format = Format::Json, .moduleLevels = {}});
  const std::string out = captureStderr([] {
    // "é" and "€" are well-formed; 0xFF, a lone continuation byte, a truncated sequence and
    // an encoded surrogate are not.
    get("json3")->info("caf\xc3\xa9 \xe2\x82\xac \xff \x80 \xe2\x82 \xed\xa0\x80!");
  });
  EXPECT_NE(out.find("\"msg\":\"caf\xc3\xa9 \xe2\x82\xac \\ufffd \\ufffd \\ufffd\\ufffd "
                     "\\ufffd\\ufffd\\ufffd!\"}"),
            std::string::npos)
      << out;
}

TEST_F(LogTest, ModuleLevelOverridesGlobalLevel) {
  auto early = get("override-early");  // created before configure(): must follow it too
  configure(Options{.level = "warn",
                    .format = Format::Text,
                    .moduleLevels = {{"override-early", "debug"}, {"override-quiet", "off"}}});
  const std::string out = captureStderr([&] {
    early->debug("early debug shown");
    get("override-plain")->info("plain info hidden");
    get("override-plain")->warn("plain warn shown");
    get("override-quiet")->error("quiet error hidden");
  });
  EXPECT_NE(out.find("[override-early] early debug shown"), std::string::npos) << out;
  EXPECT_NE(out.find("[override-plain] plain warn shown"), std::string::npos) << out;
  EXPECT_EQ(out.find("hidden"), std::string::npos) << out;
  EXPECT_TRUE(get("override-early")->should_log(spdlog::level::debug));
  EXPECT_FALSE(get("override-plain")->should_log(spdlog::level::info));
}

TEST_F(LogTest, ReconfigureChangesExistingLoggers) {
  configure(Options{.level = "error", .format = Format::Text, .moduleLevels = {}});
  auto logger = get("reconf");
  EXPECT_FALSE(logger->should_log(spdlog::level::info));
  configure(Options{.level = "trace", .format = Format::Text, .moduleLevels = {}});
  EXPECT_TRUE(logger->should_log(spdlog::level::trace));
}

TEST_F(LogTest, InvalidLevelIsRejectedAndChangesNothing) {
  configure(Options{.level = "error", .format = Format::Text, .moduleLevels = {}});
  try {
    configure(Options{.level = "verbose", .format = Format::Json, .moduleLevels = {}});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("'verbose'"), std::string::npos) << error.what();
  }
  try {
    configure(Options{.level = "info", .format = Format::Text, .moduleLevels = {{"net", "loud"}}});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("'net'"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("'loud'"), std::string::npos) << error.what();
  }
  // Still the text format at level error.
  EXPECT_FALSE(get("unchanged")->should_log(spdlog::level::warn));
  const std::string out = captureStderr([] { get("unchanged")->error("x"); });
  EXPECT_EQ(out.find('{'), std::string::npos) << out;
}

TEST_F(LogTest, ValidLevelNames) {
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    EXPECT_TRUE(isValidLevel(level)) << level;
  }
  for (const char* level : {"", "warning", "critical", "INFO", "verbose", "info "}) {
    EXPECT_FALSE(isValidLevel(level)) << level;
  }
}

TEST_F(LogTest, ConcurrentLoggingKeepsLinesWhole) {
  configure(Options{.level = "info", .format = Format::Json, .moduleLevels = {}});
  constexpr int kThreads = 4;
  constexpr int kMessages = 200;
  const std::string out = captureStderr([] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        // Each thread creates its logger itself to exercise the registry too.
        auto logger = get("thread" + std::to_string(t));
        for (int i = 0; i < kMessages; ++i)
          logger->info("message {} of \"{}\"", i, t);
      });
    }
    for (auto& thread : threads)
      thread.join();
  });
  const std::regex line(
      R"(\{"ts":"[0-9T:.Z-]+","level":"info","module":"thread\d","msg":"message \d+ of \\"\d\\""\})");
  std::istringstream lines(out);
  int count = 0;
  for (std::string text; std::getline(lines, text); ++count) {
    ASSERT_TRUE(std::regex_match(text, line)) << text;
  }
  EXPECT_EQ(count, kThreads * kMessages);
}

}  // namespace
}  // namespace parley::log
