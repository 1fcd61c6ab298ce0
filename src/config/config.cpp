#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include <parley/config/config.hpp>

namespace parley::config {
namespace {

struct IntLimit {
  std::int64_t min;
  std::int64_t max;
};

// The documented ranges (docs/config.md); loading and validate() share them.
constexpr IntLimit kThreads{0, 1024};
constexpr IntLimit kPort{0, 65535};
constexpr IntLimit kAlternatePort{1, 65535};
constexpr IntLimit kTcpIdleTimeoutSeconds{1, 3600};
constexpr IntLimit kTcpMaxConnections{1, 1'000'000};
// RFC 5389 section 7.1: 548 bytes is the smallest message every path must carry; 65555 is the
// largest a 16-bit length field can frame (20-byte header + 65535).
constexpr IntLimit kTcpMaxMessageSize{548, 65555};
// RFC 5389 section 15.10: SOFTWARE is fewer than 128 characters, at most 763 bytes.
constexpr std::size_t kSoftwareMaxChars = 127;
constexpr std::size_t kSoftwareMaxBytes = 763;

constexpr std::string_view kLevelList = "trace, debug, info, warn, error, off";

// Every key the file may contain; tables are recursed into, other keys are leaves.
const std::set<std::string, std::less<>>& knownTables() {
  static const std::set<std::string, std::less<>> tables{"server", "log", "log.modules", "stun"};
  return tables;
}

const std::set<std::string, std::less<>>& knownKeys() {
  static const std::set<std::string, std::less<>> keys = [] {
    std::set<std::string, std::less<>> all{"server",
                                           "server.threads",
                                           "log",
                                           "log.level",
                                           "log.format",
                                           "log.modules",
                                           "stun",
                                           "stun.listen",
                                           "stun.port",
                                           "stun.udp",
                                           "stun.tcp",
                                           "stun.alternate_address",
                                           "stun.alternate_port",
                                           "stun.software",
                                           "stun.tcp_idle_timeout_seconds",
                                           "stun.tcp_max_connections",
                                           "stun.tcp_max_message_size"};
    for (const auto module : kLogModules)
      all.insert("log.modules." + std::string(module));
    return all;
  }();
  return keys;
}

std::string rangeText(IntLimit limit) {
  return fmt::format("an integer from {} to {}", limit.min, limit.max);
}

std::string_view typeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    default:
      return "nothing";
  }
}

std::string parentOf(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string() : std::string(path.substr(0, dot));
}

std::string_view lastSegment(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::string join(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, so the
// common "prot" for "port" typo counts as one edit.
std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// A known key close to `path`: a near spelling in the same table, or the same name in
// another table ("port" at the top level -> "stun.port").
std::optional<std::string> suggestKey(std::string_view path) {
  const std::string parent = parentOf(path);
  const std::string_view name = lastSegment(path);
  std::optional<std::string> best;
  std::size_t bestDistance = std::numeric_limits<std::size_t>::max();
  for (const auto& known : knownKeys()) {
    const std::string_view knownName = lastSegment(known);
    if (parentOf(known) == parent) {
      // One edit per three characters: "prot" -> "port", but not "turn" -> "stun".
      const std::size_t distance = editDistance(name, knownName);
      if (distance <= std::max<std::size_t>(1, knownName.size() / 3) && distance < bestDistance) {
        best = known;
        bestDistance = distance;
      }
    } else if (knownName == name && !best) {
      best = known;
    }
  }
  return best;
}

// A problem found while loading, with what is needed to place and order it.
struct Issue {
  std::string key;
  std::string relatedKey;  // where to point when `key` is not in the file ("stun.port")
  std::string message;
};

void addIssue(std::vector<Issue>& issues, std::string key, std::string message,
              std::string relatedKey = {}) {
  issues.push_back({std::move(key), std::move(relatedKey), std::move(message)});
}

void checkRange(std::vector<Issue>& issues, std::string key, std::int64_t value, IntLimit limit) {
  if (value < limit.min || value > limit.max) {
    addIssue(issues, std::move(key), fmt::format("expected {}, got {}", rangeText(limit), value));
  }
}

std::size_t utf8Chars(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

void validateInto(const Config& config, std::vector<Issue>& issues) {
  checkRange(issues, "server.threads", config.server.threads, kThreads);

  if (!log::isValidLevel(config.log.level)) {
    addIssue(issues, "log.level",
             fmt::format("expected one of {}, got {}", kLevelList, tomlQuote(config.log.level)));
  }
  for (const auto& [module, level] : config.log.moduleLevels) {
    const std::string key = "log.modules." + module;
    if (std::find(std::begin(kLogModules), std::end(kLogModules), module) ==
        std::end(kLogModules)) {
      addIssue(issues, key,
               fmt::format("unknown module '{}' (modules: app, config, net, stun)", module));
    }
    if (!log::isValidLevel(level)) {
      addIssue(issues, key,
               fmt::format("expected one of {}, got {}", kLevelList, tomlQuote(level)));
    }
  }

  const StunConfig& stun = config.stun;
  if (stun.listen.empty()) addIssue(issues, "stun.listen", "needs at least one IP address");
  for (std::size_t i = 0; i < stun.listen.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (stun.listen[j] == stun.listen[i]) {
        addIssue(issues, fmt::format("stun.listen[{}]", i),
                 fmt::format("{} is listed twice", stun.listen[i].toString()));
        break;
      }
    }
  }
  if (!stun.udp && !stun.tcp) {
    addIssue(issues, "stun.udp", "at least one of stun.udp and stun.tcp must be true", "stun.tcp");
  }
  checkRange(issues, "stun.alternate_port", stun.alternatePort, kAlternatePort);
  if (stun.alternateAddress) {
    // RFC 5780 section 7.1: the alternate address is a second, distinct IP on the same host,
    // advertised in OTHER-ADDRESS, so it only makes sense next to one concrete listen address.
    const IpAddress& alternate = *stun.alternateAddress;
    if (stun.listen.size() != 1) {
      addIssue(issues, "stun.alternate_address",
               fmt::format("needs exactly one stun.listen address, got {}", stun.listen.size()),
               "stun.listen");
    } else if (alternate == stun.listen.front()) {
      addIssue(issues, "stun.alternate_address",
               fmt::format("must differ from the listen address {}", alternate.toString()));
    } else if (alternate.family() != stun.listen.front().family()) {
      addIssue(issues, "stun.alternate_address",
               fmt::format("{} is not the same address family as the listen address {}",
                           alternate.toString(), stun.listen.front().toString()));
    } else if (stun.listen.front().isUnspecified()) {
      addIssue(issues, "stun.listen[0]",
               fmt::format("{} cannot be used with stun.alternate_address; name a concrete address",
                           stun.listen.front().toString()),
               "stun.listen");
    }
    if (alternate.isUnspecified()) {
      addIssue(issues, "stun.alternate_address",
               fmt::format("{} is not a concrete address", alternate.toString()));
    }
    if (stun.alternatePort == stun.port) {
      addIssue(issues, "stun.alternate_port",
               fmt::format("must differ from stun.port (both are {})", stun.port), "stun.port");
    }
  }
  if (utf8Chars(stun.software) > kSoftwareMaxChars || stun.software.size() > kSoftwareMaxBytes) {
    addIssue(issues, "stun.software",
             fmt::format("must be at most {} characters and {} bytes (RFC 5389 section 15.10)",
                         kSoftwareMaxChars, kSoftwareMaxBytes));
  }
  checkRange(issues, "stun.tcp_idle_timeout_seconds", stun.tcpIdleTimeoutSeconds,
             kTcpIdleTimeoutSeconds);
  checkRange(issues, "stun.tcp_max_connections", stun.tcpMaxConnections, kTcpMaxConnections);
  checkRange(issues, "stun.tcp_max_message_size", stun.tcpMaxMessageSize, kTcpMaxMessageSize);
}

// toml++ quotes the offending input, newline included; keep each error on one line.
std::string oneLine(std::string_view text) {
  std::string line;
  for (const char c : text) {
    if (c == '\n') {
      line += "\\n";
    } else if (c == '\r') {
      line += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      line += ' ';
    } else {
      line += c;
    }
  }
  return line;
}

std::string trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return std::string(text.substr(first, last - first + 1));
}

bool isBareKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// Turns a TOML table into a Config, collecting every problem with its location.
class Loader {
 public:
  explicit Loader(std::optional<std::string> fileLabel) : fileLabel_(std::move(fileLabel)) {}

  void readFile(const std::filesystem::path& file) {
    const std::string label = file.string();
    std::string text;
    if (!readAll(file, text)) return;
    try {
      root_ = toml::parse(text, label);
    } catch (const toml::parse_error& error) {
      const auto& begin = error.source().begin;
      errors_.push_back({{fmt::format("{}:{}:{}", label, begin.line, begin.column), "",
                          oneLine(error.description())},
                         begin.line,
                         begin.column,
                         0});
    }
  }

  void applyOverride(std::size_t index, const std::string& text) {
    const auto equals = text.find('=');
    const std::string key = trim(std::string_view(text).substr(0, equals));
    const std::string where = "--set " + key;
    if (equals == std::string::npos) {
      overrideError(index, "--set " + text, "expected KEY=VALUE, e.g. stun.port=3479");
      return;
    }
    std::vector<std::string> segments;
    for (std::size_t start = 0;;) {
      const auto dot = key.find('.', start);
      segments.push_back(key.substr(start, dot == std::string::npos ? dot : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!std::all_of(segments.begin(), segments.end(), isBareKey)) {
      overrideError(index, where, "expected a dotted key like stun.port before '='");
      return;
    }
    const std::string value = trim(std::string_view(text).substr(equals + 1));
    if (value.empty()) {
      overrideError(index, where, "expected a value after '='");
      return;
    }

    toml::table parsed;
    try {
      parsed = toml::parse("v = " + value + "\n");
    } catch (const toml::parse_error& error) {
      // Bare words are strings (log.level=debug); something that looks like TOML but does not
      // parse is a mistake worth reporting.
      if (std::string_view("\"'[{").find(value.front()) != std::string_view::npos) {
        overrideError(index, where,
                      fmt::format("invalid TOML value: {}", oneLine(error.description())));
        return;
      }
      parsed = toml::table{{"v", value}};
    }
    if (parsed.size() != 1 || !parsed.contains("v")) {
      overrideError(index, where, "expected a single TOML value after '='");
      return;
    }

    toml::table* table = &root_;
    for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
      toml::node* child = table->get(segments[i]);
      if (child == nullptr) {
        child = &table->insert(segments[i], toml::table{}).first->second;
      }
      if (!child->is_table()) {
        overrideError(index, where,
                      fmt::format("'{}' is not a table (got {})",
                                  fmt::join(segments.begin(), segments.begin() + i + 1, "."),
                                  typeName(*child)));
        return;
      }
      table = child->as_table();
    }
    table->insert_or_assign(segments.back(), *parsed.get("v"));
    overrides_.push_back(key);
  }

  std::optional<Config> convert() {
    checkUnknownKeys(root_, "");
    Config config;
    if (const auto* server = section("server")) {
      readInt(*server, "server.threads", kThreads, config.server.threads);
    }
    if (const auto* log = section("log")) readLog(*log, config.log);
    if (const auto* stun = section("stun")) readStun(*stun, config.stun);

    std::vector<Issue> issues;
    validateInto(config, issues);
    for (auto& issue : issues) {
      const toml::node* node = find(issue.key);
      std::string key = issue.key;
      if (node == nullptr && overrideFor(key).empty() && !issue.relatedKey.empty()) {
        node = find(issue.relatedKey);
        if (node != nullptr || !overrideFor(issue.relatedKey).empty()) key = issue.relatedKey;
      }
      place(key, node, {"", std::move(issue.key), std::move(issue.message)});
    }
    if (!errors_.empty()) return std::nullopt;
    return config;
  }

  ConfigErrors errors() {
    // File problems in file order, then ones only the file as a whole can carry, then
    // overrides in command-line order.
    std::stable_sort(errors_.begin(), errors_.end(), [](const Placed& a, const Placed& b) {
      return std::tie(a.line, a.column, a.overrideRank) <
             std::tie(b.line, b.column, b.overrideRank);
    });
    ConfigErrors result;
    for (auto& placed : errors_)
      result.add(std::move(placed.error));
    return result;
  }

  bool failed() const { return !errors_.empty(); }

 private:
  struct Placed {
    ConfigError error;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::size_t overrideRank = 0;
  };
  static constexpr std::uint32_t kNoLine = std::numeric_limits<std::uint32_t>::max();

  bool readAll(const std::filesystem::path& file, std::string& text) {
    const auto fail = [&](int error) {
      errors_.push_back({{"", "",
                          fmt::format("cannot read {}: {}", file.string(),
                                      std::generic_category().message(error))},
                         0,
                         0,
                         0});
      return false;
    };
    std::FILE* stream = std::fopen(file.c_str(), "rb");
    if (stream == nullptr) return fail(errno);
    char buffer[8192];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, stream)) > 0)
      text.append(buffer, n);
    const int error = std::ferror(stream) ? errno : 0;  // a directory fails here (EISDIR)
    std::fclose(stream);
    if (error != 0) return fail(error);
    return true;
  }

  void overrideError(std::size_t index, std::string where, std::string message) {
    errors_.push_back({{std::move(where), "", std::move(message)}, kNoLine, kNoLine, index});
  }

  // The override that set `key`, a table or array holding it, or a key inside it (which
  // created it as a table); the last one wins.
  std::string overrideFor(std::string_view key) const {
    const auto within = [](std::string_view inner, std::string_view outer) {
      return inner.substr(0, outer.size()) == outer &&
             (inner.size() == outer.size() || inner[outer.size()] == '.' ||
              inner[outer.size()] == '[');
    };
    for (auto it = overrides_.rbegin(); it != overrides_.rend(); ++it) {
      if (within(key, *it) || within(*it, key)) return *it;
    }
    return {};
  }

  const toml::node* find(std::string_view key) const { return root_.at_path(key).node(); }

  // Fills in `where`: the override that set the key, else its place in the file, else the
  // file itself (a default that clashes with a file value), else nothing.
  void place(std::string_view key, const toml::node* node, ConfigError error,
             const toml::source_region* keySource = nullptr) {
    const std::string set = overrideFor(key);
    if (!set.empty()) {
      const auto rank = static_cast<std::size_t>(
          std::find(overrides_.rbegin(), overrides_.rend(), set).base() - overrides_.begin());
      error.where = "--set " + set;
      errors_.push_back({std::move(error), kNoLine, kNoLine, rank});
      return;
    }
    const toml::source_region* source = keySource;
    if (source == nullptr && node != nullptr) source = &node->source();
    if (source != nullptr && source->begin.line > 0 && fileLabel_) {
      error.where = fmt::format("{}:{}:{}", *fileLabel_, source->begin.line, source->begin.column);
      errors_.push_back({std::move(error), source->begin.line, source->begin.column, 0});
      return;
    }
    if (fileLabel_) error.where = *fileLabel_;
    errors_.push_back({std::move(error), kNoLine - 1, 0, 0});
  }

  void checkUnknownKeys(const toml::table& table, const std::string& prefix) {
    for (const auto& [key, node] : table) {
      const std::string path = join(prefix, key.str());
      if (!knownKeys().contains(path)) {
        std::string message =
            fmt::format("unknown {} '{}'", node.is_table() ? "table" : "key", path);
        if (const auto suggestion = suggestKey(path)) {
          message += fmt::format(" (did you mean '{}'?)", *suggestion);
        }
        // A [table] header points at its bracket, any other key at its name.
        place(path, &node, {"", "", std::move(message)},
              node.is_table() && node.source().begin.line > 0 ? &node.source() : &key.source());
        continue;
      }
      if (knownTables().contains(path) && node.is_table()) {
        checkUnknownKeys(*node.as_table(), path);
      }
    }
  }

  void typeError(std::string_view key, const toml::node& node, std::string_view expected) {
    place(key, &node,
          {"", std::string(key), fmt::format("expected {}, got {}", expected, typeName(node))});
  }

  const toml::table* section(std::string_view key) {
    const toml::node* node = root_.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) {
      typeError(key, *node, "a table");
      return nullptr;
    }
    return node->as_table();
  }

  const toml::node* field(const toml::table& table, std::string_view key) {
    return table.get(lastSegment(key));
  }

  template <typename T>
  void readInt(const toml::table& table, std::string_view key, IntLimit limit, T& out) {
    const toml::node* node = field(table, key);
    if (node == nullptr) return;
    const auto* value = node->as_integer();
    if (value == nullptr) {
      typeError(key, *node, rangeText(limit));
      return;
    }
    const std::int64_t number = value->get();
    if (number < limit.min || number > limit.max) {
      place(key, node,
            {"", std::string(key), fmt::format("expected {}, got {}", rangeText(limit), number)});
      return;
    }
    out = static_cast<T>(number);
  }

  void readBool(const toml::table& table, std::string_view key, bool& out) {
    const toml::node* node = field(table, key);
    if (node == nullptr) return;
    if (const auto* value = node->as_boolean()) {
      out = value->get();
    } else {
      typeError(key, *node, "a boolean");
    }
  }

  const std::string* readString(const toml::node& node, std::string_view key) {
    if (const auto* value = node.as_string()) return &value->get();
    typeError(key, node, "a string");
    return nullptr;
  }

  void readString(const toml::table& table, std::string_view key, std::string& out) {
    const toml::node* node = field(table, key);
    if (node == nullptr) return;
    if (const auto* text = readString(*node, key)) out = *text;
  }

  std::optional<IpAddress> readAddress(const toml::node& node, std::string_view key) {
    const std::string* text = readString(node, key);
    if (text == nullptr) return std::nullopt;
    auto address = IpAddress::parse(*text);
    if (!address) {
      place(key, &node,
            {"", std::string(key), fmt::format("{} is not an IP address", tomlQuote(*text))});
    }
    return address;
  }

  void readLog(const toml::table& table, log::Options& out) {
    readString(table, "log.level", out.level);
    if (const toml::node* node = field(table, "log.format")) {
      if (const std::string* text = readString(*node, "log.format")) {
        if (*text == "text") {
          out.format = log::Format::Text;
        } else if (*text == "json") {
          out.format = log::Format::Json;
        } else {
          place("log.format", node,
                {"", "log.format",
                 fmt::format("expected \"text\" or \"json\", got {}", tomlQuote(*text))});
        }
      }
    }
    if (const toml::node* node = field(table, "log.modules")) {
      if (!node->is_table()) {
        typeError("log.modules", *node, "a table of module = \"level\"");
        return;
      }
      for (const auto& [module, level] : *node->as_table()) {
        const std::string key = "log.modules." + std::string(module.str());
        if (!knownKeys().contains(key)) continue;  // reported as an unknown key
        if (const std::string* text = readString(level, key)) {
          out.moduleLevels[std::string(module.str())] = *text;
        }
      }
    }
  }

  void readStun(const toml::table& table, StunConfig& out) {
    if (const toml::node* node = field(table, "stun.listen")) {
      if (const auto* array = node->as_array()) {
        std::vector<IpAddress> addresses;
        bool ok = true;
        for (std::size_t i = 0; i < array->size(); ++i) {
          const auto address = readAddress((*array)[i], fmt::format("stun.listen[{}]", i));
          if (address) {
            addresses.push_back(*address);
          } else {
            ok = false;
          }
        }
        if (ok) out.listen = std::move(addresses);
      } else {
        typeError("stun.listen", *node, "an array of IP address strings");
      }
    }
    readInt(table, "stun.port", kPort, out.port);
    readBool(table, "stun.udp", out.udp);
    readBool(table, "stun.tcp", out.tcp);
    if (const toml::node* node = field(table, "stun.alternate_address")) {
      const auto* text = node->as_string();
      if (text != nullptr && text->get().empty()) {
        out.alternateAddress.reset();
      } else if (auto address = readAddress(*node, "stun.alternate_address")) {
        out.alternateAddress = address;
      }
    }
    readInt(table, "stun.alternate_port", kAlternatePort, out.alternatePort);
    readString(table, "stun.software", out.software);
    readInt(table, "stun.tcp_idle_timeout_seconds", kTcpIdleTimeoutSeconds,
            out.tcpIdleTimeoutSeconds);
    readInt(table, "stun.tcp_max_connections", kTcpMaxConnections, out.tcpMaxConnections);
    readInt(table, "stun.tcp_max_message_size", kTcpMaxMessageSize, out.tcpMaxMessageSize);
  }

  std::optional<std::string> fileLabel_;
  toml::table root_;
  std::vector<std::string> overrides_;  // keys set by --set, in order
  std::vector<Placed> errors_;
};

}  // namespace

std::string ConfigError::toString() const {
  std::string text = where;
  // "--set stun.port: expected ..." rather than "--set stun.port: stun.port: expected ...".
  if (!key.empty() && where != "--set " + key) {
    if (!text.empty()) text += ": ";
    text += key;
  }
  if (!message.empty()) {
    if (!text.empty()) text += ": ";
    text += message;
  }
  return text;
}

std::string ConfigErrors::toString() const {
  std::string text;
  for (const auto& error : errors)
    text += error.toString() + "\n";
  return text;
}

ConfigErrors Config::validate() const {
  std::vector<Issue> issues;
  validateInto(*this, issues);
  ConfigErrors errors;
  for (auto& issue : issues)
    errors.add({"", std::move(issue.key), std::move(issue.message)});
  return errors;
}

tl::expected<Config, ConfigErrors> loadConfig(const std::optional<std::filesystem::path>& file,
                                              const std::vector<std::string>& overrides) {
  Loader loader(file ? std::optional(file->string()) : std::nullopt);
  if (file) {
    loader.readFile(*file);
    // Without the file's table, converting would only add noise about the overrides.
    if (loader.failed()) return tl::unexpected(loader.errors());
  }
  for (std::size_t i = 0; i < overrides.size(); ++i)
    loader.applyOverride(i, overrides[i]);
  auto config = loader.convert();
  if (!config) return tl::unexpected(loader.errors());
  return std::move(*config);
}

std::optional<std::filesystem::path> resolveConfigPath(
    const std::optional<std::filesystem::path>& explicitFile) {
  if (explicitFile) return explicitFile;
  if (const char* fromEnv = std::getenv("PARLEY_CONFIG"); fromEnv != nullptr && *fromEnv != '\0') {
    return std::filesystem::path(fromEnv);
  }
  std::error_code error;
  if (std::filesystem::exists("parley.toml", error)) return std::filesystem::path("parley.toml");
  return std::nullopt;
}

std::string tomlQuote(std::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\r':
        quoted += "\\r";
        break;
      case '\t':
        quoted += "\\t";
        break;
      case '\b':
        quoted += "\\b";
        break;
      case '\f':
        quoted += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          quoted += fmt::format("\\u{:04X}", static_cast<unsigned char>(c));
        } else {
          quoted += c;
        }
    }
  }
  quoted += '"';
  return quoted;
}

std::string toToml(const Config& config) {
  std::string out;
  const auto line = [&out](std::string_view text) {
    out += text;
    out += '\n';
  };
  const auto boolText = [](bool value) { return value ? "true" : "false"; };

  line("# Parley configuration: the complete effective values. Keys are described in");
  line("# docs/config.md; command-line --set KEY=VALUE overrides any of them.");
  line("");
  line("[server]");
  line("# Worker threads per server; 0 = one per CPU core.");
  line(fmt::format("threads = {}", config.server.threads));
  line("");
  line("[log]");
  line(fmt::format("# Lowest level logged: {}.", kLevelList));
  line(fmt::format("level = {}", tomlQuote(config.log.level)));
  line("# Log line format on stderr: \"text\" for people, \"json\" for log collectors.");
  line(fmt::format("format = {}",
                   tomlQuote(config.log.format == log::Format::Json ? "json" : "text")));
  line("");
  line("# Per-module levels overriding log.level; modules: app, config, net, stun.");
  line("[log.modules]");
  for (const auto& [module, level] : config.log.moduleLevels) {
    line(fmt::format("{} = {}", isBareKey(module) ? module : tomlQuote(module), tomlQuote(level)));
  }
  line("");
  const StunConfig& stun = config.stun;
  std::vector<std::string> listen;
  for (const auto& address : stun.listen)
    listen.push_back(tomlQuote(address.toString()));
  line("[stun]");
  line("# IP addresses to bind (IPv4 or IPv6), at least one.");
  line(fmt::format("listen = [{}]", fmt::join(listen, ", ")));
  line("# Port for both UDP and TCP; 0 picks a free port.");
  line(fmt::format("port = {}", stun.port));
  line("# Serve STUN over UDP.");
  line(fmt::format("udp = {}", boolText(stun.udp)));
  line("# Serve STUN over TCP; at least one of udp/tcp must be true.");
  line(fmt::format("tcp = {}", boolText(stun.tcp)));
  line("# RFC 5780 second IP for NAT behaviour discovery; \"\" = none.");
  line(fmt::format("alternate_address = {}",
                   tomlQuote(stun.alternateAddress ? stun.alternateAddress->toString() : "")));
  line("# Port used with alternate_address; must differ from port.");
  line(fmt::format("alternate_port = {}", stun.alternatePort));
  line("# SOFTWARE attribute in responses; \"\" sends none.");
  line(fmt::format("software = {}", tomlQuote(stun.software)));
  line("# Close a TCP connection that sends no complete message for this long (1-3600).");
  line(fmt::format("tcp_idle_timeout_seconds = {}", stun.tcpIdleTimeoutSeconds));
  line("# Most open TCP connections across all workers (1-1000000).");
  line(fmt::format("tcp_max_connections = {}", stun.tcpMaxConnections));
  line("# Largest framed STUN message over TCP in bytes (548-65555); larger ones close it.");
  line(fmt::format("tcp_max_message_size = {}", stun.tcpMaxMessageSize));
  return out;
}

}  // namespace parley::config
