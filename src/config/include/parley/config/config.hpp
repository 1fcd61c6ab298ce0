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
  // Generated state (self-signed certificate, generated TURN secret); relative paths are
  // relative to the working directory. Never empty.
  std::string dataDir = "parley-data";

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

// An address range: "10.0.0.0/8", "::1/128"; a bare address means the full prefix length.
// Host bits need not be zero. The app turns it into a turn::Cidr.
struct Cidr {
  IpAddress network;
  unsigned prefixLength = 0;  // 0-32 for IPv4, 0-128 for IPv6

  // "ADDRESS/LENGTH" or a bare address; nullopt with `error` set when malformed.
  static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr);
  std::string toString() const;  // "10.0.0.0/8"
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// A TURN long-term credential (RFC 8489 section 9.2). The password is a secret: toToml()
// and error messages never show it.
struct TurnUser {
  std::string name;      // 1-512 bytes, unique
  std::string password;  // not empty

  friend bool operator==(const TurnUser&, const TurnUser&) = default;
};

// The TURN relay (RFC 8656) on the STUN listeners.
struct TurnConfig {
  bool enabled = true;
  std::string realm = "parley";  // 1-127 characters, at most 763 bytes
  std::vector<TurnUser> users;
  // TURN REST API shared secrets (several for rotation), each at least 16 characters. Secrets.
  std::vector<std::string> secrets;
  unsigned nonceLifetimeSeconds = 600;                // 30-86400
  unsigned defaultLifetimeSeconds = 600;              // 60-3600
  unsigned maxLifetimeSeconds = 3600;                 // >= default, <= 86400
  unsigned permissionLifetimeSeconds = 300;           // 30-3600
  unsigned channelLifetimeSeconds = 600;              // 60-3600
  unsigned maxAllocations = 10'000;                   // total, 1-1000000
  unsigned maxAllocationsPerUser = 50;                // 1-10000
  unsigned maxPermissionsPerAllocation = 64;          // 1-1000
  std::uint64_t bandwidthPerAllocationKbps = 20'000;  // 0 = unlimited
  std::uint64_t totalBandwidthKbps = 0;               // whole server; 0 = unlimited
  // IPv4 relay bind address; none = the first IPv4 stun.listen address if it is concrete
  // (see relayAddressV4()).
  std::optional<IpAddress> relayAddress;
  std::optional<IpAddress> relayAddressV6;     // none: IPv6 allocations get 440
  std::optional<IpAddress> externalAddress;    // advertised behind 1:1 NAT; none = relay address
  std::optional<IpAddress> externalAddressV6;  // likewise for IPv6
  std::uint16_t relayPortMin = 49152;          // 1024-65535, min <= max
  std::uint16_t relayPortMax = 65535;
  std::vector<Cidr> allowedPeers;             // override the built-in deny list
  std::vector<Cidr> deniedPeers;              // added to the built-in deny list
  unsigned relaySocketBufferBytes = 1 << 20;  // 65536-67108864
  unsigned unauthenticatedPerSecond = 10;     // 401 answers per second per source IP
  // Lifetime of the TURN REST credentials handed to browsers with the ICE servers.
  unsigned credentialTtlSeconds = 43'200;  // 60-604800

  friend bool operator==(const TurnConfig&, const TurnConfig&) = default;
};

// TURN over TLS and DTLS (RFC 8656 section 3.1).
struct TlsConfig {
  bool enabled = true;        // TLS on `port` (TCP)
  bool dtls = true;           // DTLS on `port` (UDP)
  std::uint16_t port = 5349;  // 0 picks a free port (tests)
  std::string certFile;       // PEM chain; "" = self-signed, created in server.data_dir
  std::string keyFile;        // PEM private key; set both or neither

  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

// The web platform (docs/api.md): HTTPS + WSS, the HTTP redirect, and their abuse limits.
struct WebConfig {
  std::vector<IpAddress> listen{IpAddress::v4(0x7F000001)};  // at least one; 127.0.0.1
  std::uint16_t httpsPort = 443;                             // 0 picks a free port (tests)
  std::uint16_t httpPort = 80;  // plain HTTP, only redirects to HTTPS; 0 picks a free port
  bool httpRedirect = true;     // false: no plain HTTP listener
  // "https://host[:port]" as browsers reach this server: invitation links, Origin checks, CSP,
  // redirects, ICE server host names. "" = https://localhost[:https_port].
  std::string publicUrl;
  std::string clientDir;  // the browser client's files; "" = the built-in location
  // TURN over the HTTPS port (STUN/TURN recognised by its first bytes, after TLS or in the
  // clear), advertised to browsers as turns:HOST:PORT?transport=tcp.
  bool turnOverHttps = true;
  // Load balancers whose connections start with a PROXY protocol (v1/v2) header.
  std::vector<Cidr> proxyProtocolFrom;
  unsigned maxHeaderBytes = 16 * 1024;
  unsigned maxBodyBytes = 1024 * 1024;
  unsigned maxConnections = 20'000;
  unsigned headerTimeoutSeconds = 10;
  unsigned idleTimeoutSeconds = 60;
  unsigned requestsPerSecondPerIp = 50;  // 0 = no per-IP request rate limit
  unsigned requestBurstPerIp = 200;
  unsigned wsMaxMessageBytes = 64 * 1024;
  unsigned wsMaxQueuedBytes = 1024 * 1024;
  unsigned wsPingIntervalSeconds = 20;
  unsigned shutdownGraceSeconds = 10;   // SIGTERM: how long calls may finish
  unsigned clientErrorsPerMinute = 10;  // client error reports per IP

  friend bool operator==(const WebConfig&, const WebConfig&) = default;
};

// Advisor accounts, sessions and invitation tokens.
struct AuthConfig {
  unsigned sessionTtlSeconds = 43'200;      // advisor login session
  unsigned invitationTtlSeconds = 604'800;  // default invitation validity (7 days)
  unsigned guestTtlSeconds = 86'400;        // a customer's cookie after joining
  unsigned setupTtlSeconds = 86'400;        // the first-advisor set-up link
  unsigned loginMaxFailures = 5;            // per account and per IP inside the window
  unsigned loginWindowSeconds = 300;
  unsigned loginLockoutSeconds = 60;    // doubles per further lockout, capped at 1 h
  unsigned passwordMemoryKib = 65'536;  // Argon2id memory cost
  unsigned passwordIterations = 2;      // Argon2id time cost

  friend bool operator==(const AuthConfig&, const AuthConfig&) = default;
};

// Meetings.
struct RoomsConfig {
  unsigned maxParticipants = 10;  // admitted, host included
  unsigned maxLobby = 50;
  unsigned chatHistory = 500;
  unsigned reconnectGraceSeconds = 30;

  friend bool operator==(const RoomsConfig&, const RoomsConfig&) = default;
};

// [netcheck]: the server side of the network check (docs/netcheck.md): test sessions, the
// WebSocket echo, grading and the UDP probe peer behind the TURN relay.
struct NetcheckConfig {
  bool enabled = true;
  unsigned sessionsPerMinute = 6;  // POST /api/v1/netcheck per client address (IPv6 per /64)
  unsigned ttlSeconds = 300;       // a session's ticket and TURN credential
  // The probe's send rate per down test; at most turn.bandwidth_per_allocation_kbps.
  unsigned maxKbps = 10'000;
  unsigned maxSeconds = 4;  // longest down test
  unsigned probePort = 0;   // UDP port of the probe peer; 0 = an ephemeral port

  friend bool operator==(const NetcheckConfig&, const NetcheckConfig&) = default;
};

// One node of the deployment as the network contract names it (docs/requirements.md).
enum class NodeRole : std::uint8_t {
  Main,      // `parley serve`: web app, signaling, STUN/TURN
  Failover,  // `parley serve` at the failover site
  Turn,      // `parley turn`: STUN/TURN only
  Media,     // the media server (SFU); not built yet
};

struct DeploymentNode {
  std::string name;  // 1-64 letters, digits, '.', '_', '-'; unique
  NodeRole role = NodeRole::Main;
  std::string region;           // "" = none; at most 64 characters
  std::vector<Cidr> addresses;  // at least one; host bits zero; IPv4 /8 or narrower, IPv6 /16

  friend bool operator==(const DeploymentNode&, const DeploymentNode&) = default;
};

// [deployment]: what `parley requirements` publishes as the deployment's network contract.
struct DeploymentConfig {
  std::string domain;        // the one domain; "" = the host of web.public_url
  std::string organisation;  // shown on the requirements page; "" = not named
  std::string contact;       // e.g. the IT support address; "" = not named
  // Every node with its public addresses; empty = one "main" node derived from the listen,
  // relay and external addresses (non-public ones are then reported, not published).
  std::vector<DeploymentNode> nodes;

  friend bool operator==(const DeploymentConfig&, const DeploymentConfig&) = default;
};

struct Config {
  ServerConfig server;
  log::Options log;  // [log] level/format, [log.modules] -> moduleLevels
  StunConfig stun;
  TurnConfig turn;
  TlsConfig tls;
  WebConfig web;
  AuthConfig auth;
  RoomsConfig rooms;
  DeploymentConfig deployment;
  NetcheckConfig netcheck;

  // web.public_url, or https://localhost[:https_port] when it is empty; no trailing slash.
  std::string publicUrl() const;

  // The one domain of the network contract: deployment.domain, else the host of publicUrl()
  // in lower case; "" when that host is an IP address.
  std::string deploymentDomain() const;

  // The IPv4 address relay sockets bind to: turn.relay_address, else the first IPv4
  // stun.listen address unless it is 0.0.0.0; nullopt when neither gives one.
  std::optional<IpAddress> relayAddressV4() const;

  // Every semantic problem (ranges, cross-field rules, level names), keyed by TOML key path,
  // with `where` left empty. loadConfig() fills in `where`.
  ConfigErrors validate() const;

  friend bool operator==(const Config&, const Config&) = default;
};

// The module names [log.modules] accepts.
inline constexpr std::string_view kLogModules[] = {"app", "config", "net",   "stun",  "tls", "turn",
                                                   "web", "api",    "store", "rooms", "auth"};

// What toToml() prints instead of a TURN password or secret. loadConfig() rejects it, so a
// printed config is never silently used with a placeholder credential.
inline constexpr std::string_view kRedacted = "<redacted>";

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
// reads it back to an equal Config, except that TURN passwords and secrets are printed as
// kRedacted (never the secret itself).
std::string toToml(const Config& config);

// `text` as a TOML basic string, quotes included; for building overrides from plain values.
std::string tomlQuote(std::string_view text);

}  // namespace parley::config
