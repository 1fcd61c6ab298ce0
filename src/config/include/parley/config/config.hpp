// Parley's configuration as a typed value. Defaults live in the structs; a TOML file and
// command-line overrides ("stun.port=3479") go through one parse-and-validate path that
// reports every problem with where it came from. Documented in docs/config.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include <parley/base/endpoint.hpp>
#include <parley/base/log.hpp>

namespace parley::config {

// One problem, e.g. where "parley.toml:3:8", key "stun.port",
// message "expected an integer from 0 to 65535, got 70000".
struct ConfigError {
  std::string where;    // "FILE:LINE:COL", "FILE", "--set KEY" or "" when there is no source
  std::string key;      // dotted key path ("stun.listen[1]"); "" for file-level errors
  std::string message;  // what is wrong and what was expected

  // "where: key: message", leaving out empty parts and a key `where` already names.
  std::string toString() const;
  friend bool operator==(const ConfigError&, const ConfigError&) = default;
};

struct ConfigErrors {
  std::vector<ConfigError> errors;

  bool empty() const { return errors.empty(); }
  std::size_t size() const { return errors.size(); }
  void add(ConfigError error) { errors.push_back(std::move(error)); }
  // One error per line, each ending in '\n'.
  std::string toString() const;
};

struct ServerConfig {
  unsigned threads = 0;  // worker threads per server; 0 = number of CPU cores

  friend bool operator==(const ServerConfig&, const ServerConfig&) = default;
};

struct StunConfig {
  std::vector<IpAddress> listen{IpAddress::v4(0x7F000001)};  // at least one; 127.0.0.1
  std::uint16_t port = 3478;                                 // 0 picks a free port (tests)
  bool udp = true;
  bool tcp = true;  // at least one of udp/tcp
  // RFC 5780 NAT behaviour discovery: needs exactly one listen address, different from this
  // one and of the same family.
  std::optional<IpAddress> alternateAddress;
  std::uint16_t alternatePort = 3479;  // must differ from port
  std::string software = "parley";     // SOFTWARE attribute in responses; "" sends none
  // Abuse limits for STUN over TCP (RFC 5389 section 7.2.2).
  unsigned tcpIdleTimeoutSeconds = 30;
  unsigned tcpMaxConnections = 10'000;
  unsigned tcpMaxMessageSize = 65'555;  // 20-byte header + 65535 attribute bytes

  friend bool operator==(const StunConfig&, const StunConfig&) = default;
};

struct Config {
  ServerConfig server;
  log::Options log;  // [log] level/format, [log.modules] -> moduleLevels
  StunConfig stun;

  // Every semantic problem (ranges, cross-field rules, level names), keyed by TOML key path,
  // with `where` left empty. loadConfig() fills in `where`.
  ConfigErrors validate() const;

  friend bool operator==(const Config&, const Config&) = default;
};

// The module names [log.modules] accepts.
inline constexpr std::string_view kLogModules[] = {"app", "config", "net", "stun"};

// Reads `file` (or starts from the defaults when there is none), applies each override
// "key.path=TOML_VALUE" in order, then converts and validates. A value that is not valid TOML
// and does not start with a quote or bracket is taken as a bare string: log.level=debug.
tl::expected<Config, ConfigErrors> loadConfig(const std::optional<std::filesystem::path>& file,
                                              const std::vector<std::string>& overrides);

// The config file to use: `explicitFile` (--config) if given, else $PARLEY_CONFIG if set and
// non-empty, else ./parley.toml if it exists, else nullopt (built-in defaults).
std::optional<std::filesystem::path> resolveConfigPath(
    const std::optional<std::filesystem::path>& explicitFile);

// The complete effective config as TOML, every key with a comment line above it; loadConfig()
// reads it back to an equal Config.
std::string toToml(const Config& config);

// `text` as a TOML basic string, quotes included; for building overrides from plain values.
std::string tomlQuote(std::string_view text);

}  // namespace parley::config
