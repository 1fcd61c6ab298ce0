// The one logging header. Each source file names its module once ("stun", "net", "config",
// "app") and keeps the logger it gets; packet paths count instead of logging per packet and
// rate-limit their warnings. Nothing secret is ever passed to a logger.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace parley::log {

enum class Format { Text, Json };

struct Options {
  std::string level = "info";                       // trace, debug, info, warn, error, off
  Format format = Format::Text;                     // text for people, json for machines
  std::map<std::string, std::string> moduleLevels;  // module name -> level, overrides `level`

  friend bool operator==(const Options&, const Options&) = default;
};

// Applies options to every module logger, existing and future. Throws std::invalid_argument
// naming the bad level (and then changes nothing). Call once at start-up, before the worker
// threads start. Every logger writes through one shared stderr sink:
//   text: "2026-11-24 13:45:01.123 info  [stun] message"  (local time)
//   json: {"ts":"2026-11-24T13:45:01.123Z","level":"info","module":"stun","msg":"message"}  (UTC)
void configure(const Options& options);

// The logger of a module, created on first use with the configured level and format.
std::shared_ptr<spdlog::logger> get(std::string_view module);

// True when `level` is a level name configure() accepts: trace, debug, info, warn, error, off.
bool isValidLevel(std::string_view level);

}  // namespace parley::log
