#include <array>
#include <chrono>
#include <ctime>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <parley/base/log.hpp>

namespace parley::log {
namespace {

struct LevelName {
  std::string_view name;
  spdlog::level::level_enum level;
};

// Our names, not spdlog's: spdlog says "warning" and "critical", the config says "warn".
constexpr std::array<LevelName, 6> kLevels{{{"trace", spdlog::level::trace},
                                            {"debug", spdlog::level::debug},
                                            {"info", spdlog::level::info},
                                            {"warn", spdlog::level::warn},
                                            {"error", spdlog::level::err},
                                            {"off", spdlog::level::off}}};

std::optional<spdlog::level::level_enum> parseLevel(std::string_view name) {
  for (const auto& entry : kLevels) {
    if (entry.name == name) return entry.level;
  }
  return std::nullopt;
}

std::string_view levelName(spdlog::level::level_enum level) {
  for (const auto& entry : kLevels) {
    if (entry.level == level) return entry.name;
  }
  return level == spdlog::level::critical ? "crit" : "?";
}

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

struct SplitTime {
  std::tm tm{};
  int millis = 0;
};

SplitTime splitTime(spdlog::log_clock::time_point time, bool utc) {
  const auto sinceEpoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(sinceEpoch);
  SplitTime split;
  split.millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(sinceEpoch - seconds).count());
  const std::time_t whole = seconds.count();
  if (utc) {
    gmtime_r(&whole, &split.tm);
  } else {
    localtime_r(&whole, &split.tm);
  }
  return split;
}

// "2026-11-24 13:45:01.123 info  [stun] message", local time, for people reading a terminal.
class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto t = splitTime(msg.time, false);
    fmt::format_to(std::back_inserter(dest),
                   "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {:<5} [{}] ", t.tm.tm_year + 1900,
                   t.tm.tm_mon + 1, t.tm.tm_mday, t.tm.tm_hour, t.tm.tm_min, t.tm.tm_sec, t.millis,
                   levelName(msg.level),
                   std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    append(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }
};

// Length of the well-formed UTF-8 sequence at the start of `text`, 0 if it is malformed
// (RFC 3629 section 4: no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8SequenceLength(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const auto continuation = [&](std::size_t i) {
    return i < text.size() && (byte(i) & 0xC0) == 0x80;
  };
  const unsigned char lead = byte(0);
  if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (lead == 0xE0 && byte(1) < 0xA0) return 0;  // overlong
    if (lead == 0xED && byte(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (lead == 0xF0 && byte(1) < 0x90) return 0;  // overlong
    if (lead == 0xF4 && byte(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// RFC 8259 section 7 string escaping. Messages can carry peer-supplied text (a SOFTWARE
// attribute, a username), so invalid UTF-8 becomes U+FFFD instead of breaking the JSON line.
void appendJsonString(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8SequenceLength(text.substr(i));
      if (length == 0) {
        append(dest, "\\ufffd");
        ++i;
      } else {
        append(dest, text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        append(dest, "\\\"");
        break;
      case '\\':
        append(dest, "\\\\");
        break;
      case '\n':
        append(dest, "\\n");
        break;
      case '\r':
        append(dest, "\\r");
        break;
      case '\t':
        append(dest, "\\t");
        break;
      case '\b':
        append(dest, "\\b");
        break;
      case '\f':
        append(dest, "\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          fmt::format_to(std::back_inserter(dest), "\\u{:04x}", c);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  dest.push_back('"');
}

// One JSON object per line, UTC timestamps, for log shippers.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto t = splitTime(msg.time, true);
    fmt::format_to(std::back_inserter(dest),
                   R"({{"ts":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z","level":")",
                   t.tm.tm_year + 1900, t.tm.tm_mon + 1, t.tm.tm_mday, t.tm.tm_hour, t.tm.tm_min,
                   t.tm.tm_sec, t.millis);
    append(dest, levelName(msg.level));
    append(dest, R"(","module":)");
    appendJsonString(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    append(dest, R"(,"msg":)");
    appendJsonString(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    append(dest, "}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::unique_ptr<spdlog::formatter> makeFormatter(Format format) {
  if (format == Format::Json) return std::make_unique<JsonFormatter>();
  return std::make_unique<TextFormatter>();
}

// The logger registry: the one global Parley allows. Loggers are created lazily from any
// thread, so it is guarded; logging itself only takes the sink's own mutex.
class Registry {
 public:
  static Registry& instance() {
    static Registry registry;
    return registry;
  }

  void configure(const Options& options) {
    // Check every level before touching anything, so a bad option leaves logging as it was.
    const auto global = checkedLevel(options.level, "log level");
    for (const auto& [module, level] : options.moduleLevels) {
      checkedLevel(level, "log level for module '" + module + "'");
    }
    std::lock_guard lock(mutex_);
    options_ = options;
    global_ = global;
    sink_->set_formatter(makeFormatter(options.format));
    for (auto& [module, logger] : loggers_)
      logger->set_level(levelFor(module));
  }

  std::shared_ptr<spdlog::logger> get(std::string_view module) {
    std::lock_guard lock(mutex_);
    const auto found = loggers_.find(module);
    if (found != loggers_.end()) return found->second;
    auto logger = std::make_shared<spdlog::logger>(std::string(module), sink_);
    logger->set_level(levelFor(module));
    // Warnings and errors are the lines people look for after a crash; flush them at once.
    logger->flush_on(spdlog::level::warn);
    loggers_.emplace(std::string(module), logger);
    return logger;
  }

 private:
  Registry() : sink_(std::make_shared<spdlog::sinks::stderr_sink_mt>()) {
    sink_->set_formatter(makeFormatter(Format::Text));
  }

  static spdlog::level::level_enum checkedLevel(const std::string& level, const std::string& what) {
    const auto parsed = parseLevel(level);
    if (!parsed) {
      throw std::invalid_argument("invalid " + what + " '" + level +
                                  "' (expected trace, debug, info, warn, error or off)");
    }
    return *parsed;
  }

  // Called with mutex_ held; levels were checked by configure().
  spdlog::level::level_enum levelFor(std::string_view module) const {
    const auto found = options_.moduleLevels.find(std::string(module));
    if (found == options_.moduleLevels.end()) return global_;
    return parseLevel(found->second).value_or(global_);
  }

  std::mutex mutex_;
  std::shared_ptr<spdlog::sinks::sink> sink_;
  Options options_;
  spdlog::level::level_enum global_ = spdlog::level::info;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers_;
};

}  // namespace

void configure(const Options& options) {
  Registry::instance().configure(options);
}

std::shared_ptr<spdlog::logger> get(std::string_view module) {
  return Registry::instance().get(module);
}

bool isValidLevel(std::string_view level) {
  return parseLevel(level).has_value();
}

}  // namespace parley::log
