#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <span>
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

// [turn]; lifetimes in seconds. RFC 8656 section 3.2 (allocations), 9 (permissions), 12
// (channels) give the defaults.
constexpr IntLimit kNonceLifetime{30, 86'400};
constexpr IntLimit kDefaultLifetime{60, 3600};
constexpr IntLimit kMaxLifetime{60, 86'400};  // and at least turn.default_lifetime_seconds
constexpr IntLimit kPermissionLifetime{30, 3600};
constexpr IntLimit kChannelLifetime{60, 3600};
constexpr IntLimit kMaxAllocations{1, 1'000'000};
constexpr IntLimit kMaxAllocationsPerUser{1, 10'000};
constexpr IntLimit kMaxPermissionsPerAllocation{1, 1000};
constexpr IntLimit kBandwidthKbps{0, 100'000'000};  // 100 Gbit/s; 0 = unlimited
constexpr IntLimit kRelayPort{1024, 65535};
constexpr IntLimit kRelaySocketBufferBytes{65'536, 67'108'864};
constexpr IntLimit kUnauthenticatedPerSecond{1, 100'000};
// RFC 8489 section 14.9: REALM is fewer than 128 characters, at most 763 bytes.
constexpr std::size_t kRealmMaxChars = 127;
constexpr std::size_t kRealmMaxBytes = 763;
constexpr std::size_t kUserNameMaxBytes = 512;
constexpr IntLimit kCredentialTtl{60, 604'800};

// [web], [auth] and [rooms] are mostly bounded integers: one table per section describes each
// (key, range, comment, member) once, and reading, validation and printing all walk it.
template <typename Section>
struct UnsignedField {
  std::string_view key;
  IntLimit limit;
  std::string_view comment;
  unsigned Section::*member;
};

constexpr UnsignedField<WebConfig> kWebFields[] = {
    {"web.max_header_bytes",
     {1024, 1 << 20},
     "Largest request head in bytes (431 beyond).",
     &WebConfig::maxHeaderBytes},
    {"web.max_body_bytes",
     {1024, 64 << 20},
     "Largest request body in bytes (413 beyond).",
     &WebConfig::maxBodyBytes},
    {"web.max_connections",
     {1, 1'000'000},
     "Most open HTTPS connections; more are closed.",
     &WebConfig::maxConnections},
    {"web.header_timeout_seconds",
     {1, 300},
     "A request head must arrive within this time.",
     &WebConfig::headerTimeoutSeconds},
    {"web.idle_timeout_seconds",
     {1, 3600},
     "Idle keep-alive connections close after this.",
     &WebConfig::idleTimeoutSeconds},
    {"web.requests_per_second_per_ip",
     {0, 1'000'000},
     "Requests per second per client IP (429 beyond); 0 = unlimited.",
     &WebConfig::requestsPerSecondPerIp},
    {"web.request_burst_per_ip",
     {1, 1'000'000},
     "Burst allowance of that rate.",
     &WebConfig::requestBurstPerIp},
    {"web.ws_max_message_bytes",
     {1024, 16 << 20},
     "Largest WebSocket message in bytes (close 1009 beyond).",
     &WebConfig::wsMaxMessageBytes},
    {"web.ws_max_queued_bytes",
     {4096, 256 << 20},
     "Bytes queued for a WebSocket that does not read before it is dropped (close 4008).",
     &WebConfig::wsMaxQueuedBytes},
    {"web.ws_ping_interval_seconds",
     {1, 3600},
     "WebSocket ping interval; no pong within twice this closes the socket.",
     &WebConfig::wsPingIntervalSeconds},
    {"web.shutdown_grace_seconds",
     {0, 3600},
     "On SIGTERM, how long open calls may go on before the server stops.",
     &WebConfig::shutdownGraceSeconds},
    {"web.client_errors_per_minute",
     {1, 10'000},
     "Client error reports accepted per IP a minute.",
     &WebConfig::clientErrorsPerMinute},
};

constexpr UnsignedField<AuthConfig> kAuthFields[] = {
    {"auth.session_ttl_seconds",
     {60, 2'592'000},
     "Advisor login session lifetime.",
     &AuthConfig::sessionTtlSeconds},
    {"auth.invitation_ttl_seconds",
     {60, 31'536'000},
     "Default invitation link validity.",
     &AuthConfig::invitationTtlSeconds},
    {"auth.guest_ttl_seconds",
     {60, 2'592'000},
     "A customer's cookie lifetime after joining.",
     &AuthConfig::guestTtlSeconds},
    {"auth.setup_ttl_seconds",
     {60, 2'592'000},
     "Validity of the first-advisor set-up link.",
     &AuthConfig::setupTtlSeconds},
    {"auth.login_max_failures",
     {1, 1000},
     "Failed logins per account and per IP within the window before a lockout.",
     &AuthConfig::loginMaxFailures},
    {"auth.login_window_seconds",
     {1, 86'400},
     "Window for counting failed logins.",
     &AuthConfig::loginWindowSeconds},
    {"auth.login_lockout_seconds",
     {1, 86'400},
     "First lockout; doubles for each further one, capped at 1 hour.",
     &AuthConfig::loginLockoutSeconds},
    {"auth.password_memory_kib",
     {8192, 4'194'304},
     "Argon2id memory cost in KiB.",
     &AuthConfig::passwordMemoryKib},
    {"auth.password_iterations",
     {1, 100},
     "Argon2id time cost (passes).",
     &AuthConfig::passwordIterations},
};

constexpr UnsignedField<RoomsConfig> kRoomsFields[] = {
    {"rooms.max_participants",
     {2, 100},
     "Admitted participants per meeting, host included.",
     &RoomsConfig::maxParticipants},
    {"rooms.max_lobby", {1, 1000}, "Guests waiting in a lobby.", &RoomsConfig::maxLobby},
    {"rooms.chat_history",
     {0, 100'000},
     "Chat messages kept for the meeting's lifetime.",
     &RoomsConfig::chatHistory},
    {"rooms.reconnect_grace_seconds",
     {0, 3600},
     "How long a dropped participant keeps their place before leaving.",
     &RoomsConfig::reconnectGraceSeconds},
};
constexpr UnsignedField<NetcheckConfig> kNetcheckFields[] = {
    {"netcheck.sessions_per_minute",
     {1, 600},
     "Test sessions (POST /api/v1/netcheck) per client address and minute.",
     &NetcheckConfig::sessionsPerMinute},
    {"netcheck.ttl_seconds",
     {30, 3600},
     "Lifetime of a test session's ticket and TURN credential.",
     &NetcheckConfig::ttlSeconds},
    {"netcheck.max_kbps",
     {100, 1'000'000},
     "Highest rate the probe peer sends in a download test, in kbit/s.",
     &NetcheckConfig::maxKbps},
    {"netcheck.max_seconds",
     {1, 30},
     "Longest download test in seconds.",
     &NetcheckConfig::maxSeconds},
    {"netcheck.probe_port",
     {0, 65535},
     "UDP port of the probe peer on the relay address; 0 = an ephemeral port.",
     &NetcheckConfig::probePort},
};
constexpr std::size_t kSecretMinChars = 16;
constexpr std::string_view kUserKeys[] = {"name", "password"};

// [deployment] (docs/requirements.md).
constexpr std::string_view kNodeKeys[] = {"name", "role", "region", "addresses"};
constexpr std::string_view kNodeRoles[] = {"main", "failover", "turn", "media"};
constexpr std::size_t kNodeNameMaxChars = 64;
constexpr std::size_t kRegionMaxChars = 64;
constexpr std::size_t kDeploymentTextMaxChars = 200;  // organisation, contact
// A node's range wider than this is a typo, not a node (0.0.0.0/0 would allow everything).
constexpr unsigned kNodeMinPrefixV4 = 8;
constexpr unsigned kNodeMinPrefixV6 = 16;

constexpr std::string_view kLevelList = "trace, debug, info, warn, error, off";

// Every key the file may contain; tables are recursed into, other keys are leaves.
const std::set<std::string, std::less<>>& knownTables() {
  static const std::set<std::string, std::less<>> tables{
      "server", "log",  "log.modules", "stun",       "turn",    "tls",
      "web",    "auth", "rooms",       "deployment", "netcheck"};
  return tables;
}

const std::set<std::string, std::less<>>& knownKeys() {
  static const std::set<std::string, std::less<>> keys = [] {
    std::set<std::string, std::less<>> all{"server",
                                           "server.threads",
                                           "server.data_dir",
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
                                           "stun.tcp_max_message_size",
                                           "turn",
                                           "turn.enabled",
                                           "turn.realm",
                                           "turn.users",
                                           "turn.secrets",
                                           "turn.nonce_lifetime_seconds",
                                           "turn.default_lifetime_seconds",
                                           "turn.max_lifetime_seconds",
                                           "turn.permission_lifetime_seconds",
                                           "turn.channel_lifetime_seconds",
                                           "turn.max_allocations",
                                           "turn.max_allocations_per_user",
                                           "turn.max_permissions_per_allocation",
                                           "turn.bandwidth_per_allocation_kbps",
                                           "turn.total_bandwidth_kbps",
                                           "turn.relay_address",
                                           "turn.relay_address_v6",
                                           "turn.external_address",
                                           "turn.external_address_v6",
                                           "turn.relay_port_min",
                                           "turn.relay_port_max",
                                           "turn.allowed_peers",
                                           "turn.denied_peers",
                                           "turn.relay_socket_buffer_bytes",
                                           "turn.unauthenticated_per_second",
                                           "turn.credential_ttl_seconds",
                                           "tls",
                                           "tls.enabled",
                                           "tls.dtls",
                                           "tls.port",
                                           "tls.cert_file",
                                           "tls.key_file"};
    for (const auto module : kLogModules)
      all.insert("log.modules." + std::string(module));
    for (const auto key :
         {"web", "web.listen", "web.https_port", "web.http_port", "web.http_redirect",
          "web.public_url", "web.client_dir", "web.turn_over_https", "web.proxy_protocol_from",
          "auth", "rooms", "deployment", "deployment.domain", "deployment.organisation",
          "deployment.contact", "deployment.nodes", "netcheck", "netcheck.enabled"})
      all.insert(key);
    for (const auto& field : kWebFields)
      all.insert(std::string(field.key));
    for (const auto& field : kAuthFields)
      all.insert(std::string(field.key));
    for (const auto& field : kRoomsFields)
      all.insert(std::string(field.key));
    for (const auto& field : kNetcheckFields)
      all.insert(std::string(field.key));
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

// `address` must be a concrete address of `family`; `v6Key` names where the other family goes.
void checkRelayAddress(std::vector<Issue>& issues, std::string_view key,
                       const std::optional<IpAddress>& address, AddressFamily family,
                       std::string_view otherKey) {
  if (!address) return;
  const bool v4 = family == AddressFamily::V4;
  if (address->family() != family) {
    addIssue(issues, std::string(key),
             fmt::format("{} is not an {} address ({} addresses go in {})", address->toString(),
                         v4 ? "IPv4" : "IPv6", v4 ? "IPv6" : "IPv4", otherKey));
  } else if (address->isUnspecified()) {
    addIssue(issues, std::string(key),
             fmt::format("{} is not a concrete address", address->toString()));
  }
}

void checkPeers(std::vector<Issue>& issues, std::string_view key, const std::vector<Cidr>& peers) {
  for (std::size_t i = 0; i < peers.size(); ++i) {
    const unsigned maxLength = peers[i].network.isV4() ? 32 : 128;
    if (peers[i].prefixLength > maxLength) {
      addIssue(issues, fmt::format("{}[{}]", key, i),
               fmt::format("prefix length must be 0 to {} for {}, got {}", maxLength,
                           peers[i].network.isV4() ? "IPv4" : "IPv6", peers[i].prefixLength));
    }
  }
}

// Never puts a password or secret into a message: they are secrets (docs/config.md).
void validateTurn(const Config& config, std::vector<Issue>& issues) {
  const TurnConfig& turn = config.turn;
  if (turn.realm.empty() || utf8Chars(turn.realm) > kRealmMaxChars ||
      turn.realm.size() > kRealmMaxBytes) {
    addIssue(issues, "turn.realm",
             fmt::format("must be 1 to {} characters and at most {} bytes (RFC 8489 section "
                         "14.9)",
                         kRealmMaxChars, kRealmMaxBytes));
  }
  for (std::size_t i = 0; i < turn.users.size(); ++i) {
    const TurnUser& user = turn.users[i];
    const std::string key = fmt::format("turn.users[{}]", i);
    if (user.name.empty() || user.name.size() > kUserNameMaxBytes) {
      addIssue(issues, key + ".name",
               fmt::format("must be 1 to {} bytes, got {}", kUserNameMaxBytes, user.name.size()));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (turn.users[j].name == user.name) {
        addIssue(
            issues, key + ".name",
            fmt::format("user {} is listed twice (also turn.users[{}])", tomlQuote(user.name), j));
        break;
      }
    }
    if (user.password.empty()) {
      addIssue(issues, key + ".password", "must not be empty");
    } else if (user.password == kRedacted) {
      addIssue(issues, key + ".password",
               fmt::format("is the placeholder {} that 'parley config print' writes; put the real "
                           "password here",
                           tomlQuote(kRedacted)));
    }
  }
  for (std::size_t i = 0; i < turn.secrets.size(); ++i) {
    const std::string key = fmt::format("turn.secrets[{}]", i);
    if (turn.secrets[i] == kRedacted) {
      addIssue(issues, key,
               fmt::format("is the placeholder {} that 'parley config print' writes; put the real "
                           "secret here",
                           tomlQuote(kRedacted)));
    } else if (utf8Chars(turn.secrets[i]) < kSecretMinChars) {
      addIssue(issues, key,
               fmt::format("must be at least {} characters, got {}", kSecretMinChars,
                           utf8Chars(turn.secrets[i])));
    }
  }
  checkRange(issues, "turn.nonce_lifetime_seconds", turn.nonceLifetimeSeconds, kNonceLifetime);
  checkRange(issues, "turn.default_lifetime_seconds", turn.defaultLifetimeSeconds,
             kDefaultLifetime);
  checkRange(issues, "turn.max_lifetime_seconds", turn.maxLifetimeSeconds, kMaxLifetime);
  if (turn.maxLifetimeSeconds < turn.defaultLifetimeSeconds) {
    addIssue(issues, "turn.max_lifetime_seconds",
             fmt::format("must be at least turn.default_lifetime_seconds ({}), got {}",
                         turn.defaultLifetimeSeconds, turn.maxLifetimeSeconds),
             "turn.default_lifetime_seconds");
  }
  checkRange(issues, "turn.permission_lifetime_seconds", turn.permissionLifetimeSeconds,
             kPermissionLifetime);
  checkRange(issues, "turn.channel_lifetime_seconds", turn.channelLifetimeSeconds,
             kChannelLifetime);
  checkRange(issues, "turn.max_allocations", turn.maxAllocations, kMaxAllocations);
  checkRange(issues, "turn.max_allocations_per_user", turn.maxAllocationsPerUser,
             kMaxAllocationsPerUser);
  checkRange(issues, "turn.max_permissions_per_allocation", turn.maxPermissionsPerAllocation,
             kMaxPermissionsPerAllocation);
  if (turn.bandwidthPerAllocationKbps > static_cast<std::uint64_t>(kBandwidthKbps.max)) {
    addIssue(issues, "turn.bandwidth_per_allocation_kbps",
             fmt::format("expected {}, got {}", rangeText(kBandwidthKbps),
                         turn.bandwidthPerAllocationKbps));
  }
  if (turn.totalBandwidthKbps > static_cast<std::uint64_t>(kBandwidthKbps.max)) {
    addIssue(
        issues, "turn.total_bandwidth_kbps",
        fmt::format("expected {}, got {}", rangeText(kBandwidthKbps), turn.totalBandwidthKbps));
  }

  checkRelayAddress(issues, "turn.relay_address", turn.relayAddress, AddressFamily::V4,
                    "turn.relay_address_v6");
  checkRelayAddress(issues, "turn.relay_address_v6", turn.relayAddressV6, AddressFamily::V6,
                    "turn.relay_address");
  checkRelayAddress(issues, "turn.external_address", turn.externalAddress, AddressFamily::V4,
                    "turn.external_address_v6");
  checkRelayAddress(issues, "turn.external_address_v6", turn.externalAddressV6, AddressFamily::V6,
                    "turn.external_address");
  const bool haveV4 = config.relayAddressV4().has_value();
  // With no listen address at all, stun.listen is the problem (reported above).
  if (turn.enabled && !haveV4 && !turn.relayAddressV6 && !config.stun.listen.empty()) {
    const auto firstV4 = std::find_if(config.stun.listen.begin(), config.stun.listen.end(),
                                      [](const IpAddress& address) { return address.isV4(); });
    addIssue(issues, "turn.relay_address",
             firstV4 == config.stun.listen.end()
                 ? std::string("required when turn.enabled is true and stun.listen has no IPv4 "
                               "address: name the IPv4 address relay sockets bind to, or set "
                               "turn.relay_address_v6 (or set turn.enabled = false)")
                 : fmt::format("required when turn.enabled is true and the first IPv4 "
                               "stun.listen address is {}: name the IPv4 address relay sockets "
                               "bind to (or set turn.enabled = false)",
                               firstV4->toString()),
             "stun.listen");
  }
  if (turn.externalAddress && !haveV4) {
    addIssue(issues, "turn.external_address",
             "needs an IPv4 relay address (turn.relay_address) to advertise it for");
  }
  if (turn.externalAddressV6 && !turn.relayAddressV6) {
    addIssue(issues, "turn.external_address_v6", "needs turn.relay_address_v6 to advertise it for");
  }
  checkRange(issues, "turn.relay_port_min", turn.relayPortMin, kRelayPort);
  checkRange(issues, "turn.relay_port_max", turn.relayPortMax, kRelayPort);
  if (turn.relayPortMin > turn.relayPortMax) {
    addIssue(issues, "turn.relay_port_min",
             fmt::format("must not be greater than turn.relay_port_max ({} > {})",
                         turn.relayPortMin, turn.relayPortMax),
             "turn.relay_port_max");
  }
  checkPeers(issues, "turn.allowed_peers", turn.allowedPeers);
  checkPeers(issues, "turn.denied_peers", turn.deniedPeers);
  checkRange(issues, "turn.relay_socket_buffer_bytes", turn.relaySocketBufferBytes,
             kRelaySocketBufferBytes);
  checkRange(issues, "turn.unauthenticated_per_second", turn.unauthenticatedPerSecond,
             kUnauthenticatedPerSecond);
  checkRange(issues, "turn.credential_ttl_seconds", turn.credentialTtlSeconds, kCredentialTtl);
}

template <typename Section, std::size_t N>
void checkFields(std::vector<Issue>& issues, const Section& section,
                 const UnsignedField<Section> (&fields)[N]) {
  for (const auto& field : fields)
    checkRange(issues, std::string(field.key), section.*field.member, field.limit);
}

void validateWeb(const Config& config, std::vector<Issue>& issues) {
  const WebConfig& web = config.web;
  checkFields(issues, web, kWebFields);
  checkFields(issues, config.auth, kAuthFields);
  checkFields(issues, config.rooms, kRoomsFields);
  if (web.listen.empty()) addIssue(issues, "web.listen", "must list at least one address");
  checkPeers(issues, "web.proxy_protocol_from", web.proxyProtocolFrom);
  if (web.httpRedirect && web.httpPort != 0 && web.httpPort == web.httpsPort) {
    addIssue(issues, "web.http_port",
             fmt::format("must differ from web.https_port (both are {})", web.httpPort));
  }
  if (!web.publicUrl.empty()) {
    const std::string_view url = web.publicUrl;
    const bool https = url.starts_with("https://") && url.size() > 8;
    const bool plain = url.find_first_of(" \t\r\n\"'<>") == std::string_view::npos;
    auto rest = https ? url.substr(8) : std::string_view{};
    while (rest.ends_with('/'))
      rest.remove_suffix(1);
    if (!https || !plain || rest.empty() || rest.find('/') != std::string_view::npos) {
      addIssue(
          issues, "web.public_url",
          fmt::format("expected \"https://HOST\" or \"https://HOST:PORT\" without a path, got {}",
                      tomlQuote(web.publicUrl)));
    }
  }
}

void validateTls(const Config& config, std::vector<Issue>& issues) {
  const TlsConfig& tls = config.tls;
  if (tls.certFile.empty() != tls.keyFile.empty()) {
    if (tls.keyFile.empty()) {
      addIssue(issues, "tls.key_file", "must be set when tls.cert_file is (set both or neither)",
               "tls.cert_file");
    } else {
      addIssue(issues, "tls.cert_file", "must be set when tls.key_file is (set both or neither)",
               "tls.key_file");
    }
  }
  if ((tls.enabled || tls.dtls) && tls.port != 0 && tls.port == config.stun.port) {
    addIssue(issues, "tls.port", fmt::format("must differ from stun.port (both are {})", tls.port),
             "stun.port");
  }
}

bool hasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

std::string lowerCase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lower;
}

// The host of "https://HOST[:PORT][/]", brackets of an IPv6 literal removed.
std::string urlHost(std::string_view url) {
  if (url.starts_with("https://")) url.remove_prefix(8);
  url = url.substr(0, url.find('/'));
  if (url.starts_with('[')) return std::string(url.substr(1, url.find(']') - 1));
  return std::string(url.substr(0, url.find(':')));
}

// RFC 1035 section 2.3.1 host names (letters, digits, hyphens; RFC 1123 lets a label start
// with a digit), at most 253 characters with labels of 1-63. No wildcard, no trailing dot.
bool isDomainName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  while (true) {
    const auto dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    const bool ok = std::all_of(label.begin(), label.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (!ok) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

// `range` with the bits after its prefix length cleared.
Cidr masked(const Cidr& range) {
  const auto bytes = range.network.bytes();
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const unsigned bitsBefore = static_cast<unsigned>(i) * 8;
    if (range.prefixLength >= bitsBefore + 8) {
      out[i] = bytes[i];
    } else if (range.prefixLength > bitsBefore) {
      out[i] =
          static_cast<std::uint8_t>(bytes[i] & (0xFF << (8 - (range.prefixLength - bitsBefore))));
    }
  }
  const IpAddress network = range.network.isV4()
                                ? IpAddress::v4(std::span<const std::uint8_t, 4>(out.data(), 4))
                                : IpAddress::v6(std::span<const std::uint8_t, 16>(out.data(), 16));
  return {network, range.prefixLength};
}

void checkText(std::vector<Issue>& issues, std::string key, std::string_view text,
               std::size_t maxChars) {
  if (utf8Chars(text) > maxChars || hasControlCharacter(text)) {
    addIssue(issues, std::move(key),
             fmt::format("must be at most {} characters without line breaks or other control "
                         "characters",
                         maxChars));
  }
}

void validateDeployment(const Config& config, std::vector<Issue>& issues) {
  const DeploymentConfig& deployment = config.deployment;
  if (!deployment.domain.empty()) {
    if (IpAddress::parse(deployment.domain)) {
      addIssue(issues, "deployment.domain",
               fmt::format("{} is an address, not a domain name; leave deployment.domain empty "
                           "and list addresses in deployment.nodes",
                           tomlQuote(deployment.domain)));
    } else if (!isDomainName(deployment.domain)) {
      addIssue(issues, "deployment.domain",
               fmt::format("expected one domain name like \"meet.example.com\" (no wildcard, "
                           "scheme, port or path), got {}",
                           tomlQuote(deployment.domain)));
    } else if (!config.web.publicUrl.empty()) {
      // Browsers reach web.public_url's host (links, signaling, TURN URLs): publishing another
      // name would whitelist the wrong one.
      const std::string host = urlHost(config.web.publicUrl);
      if (!host.empty() && !IpAddress::parse(host) &&
          lowerCase(host) != lowerCase(deployment.domain)) {
        addIssue(issues, "deployment.domain",
                 fmt::format("{} differs from the host of web.public_url ({}), which is the "
                             "name browsers use; leave deployment.domain empty or make them agree",
                             tomlQuote(deployment.domain), tomlQuote(host)));
      }
    }
  }
  checkText(issues, "deployment.organisation", deployment.organisation, kDeploymentTextMaxChars);
  checkText(issues, "deployment.contact", deployment.contact, kDeploymentTextMaxChars);
  bool main = false;
  for (std::size_t i = 0; i < deployment.nodes.size(); ++i) {
    const DeploymentNode& node = deployment.nodes[i];
    const std::string key = fmt::format("deployment.nodes[{}]", i);
    main = main || node.role == NodeRole::Main;
    const bool nameOk = !node.name.empty() && node.name.size() <= kNodeNameMaxChars &&
                        std::all_of(node.name.begin(), node.name.end(), [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                        });
    if (!nameOk) {
      addIssue(issues, key + ".name",
               fmt::format("must be 1 to {} letters, digits, '.', '_' or '-', got {}",
                           kNodeNameMaxChars, tomlQuote(node.name)));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (deployment.nodes[j].name == node.name) {
        addIssue(issues, key + ".name",
                 fmt::format("node {} is listed twice (also deployment.nodes[{}])",
                             tomlQuote(node.name), j));
        break;
      }
    }
    checkText(issues, key + ".region", node.region, kRegionMaxChars);
    if (node.addresses.empty()) {
      addIssue(issues, key + ".addresses", "must list at least one address or range");
    }
    for (std::size_t j = 0; j < node.addresses.size(); ++j) {
      const Cidr& range = node.addresses[j];
      const std::string addressKey = fmt::format("{}.addresses[{}]", key, j);
      const bool v4 = range.network.isV4();
      const unsigned minPrefix = v4 ? kNodeMinPrefixV4 : kNodeMinPrefixV6;
      if (range.network.isUnspecified() || range.prefixLength < minPrefix) {
        addIssue(issues, addressKey,
                 fmt::format("{} is not a node's address: give its addresses, or a range of /{} "
                             "or narrower for {}",
                             range.toString(), minPrefix, v4 ? "IPv4" : "IPv6"));
      } else if (masked(range) != range) {
        addIssue(issues, addressKey,
                 fmt::format("{} has host bits set: did you mean {}?", range.toString(),
                             masked(range).toString()));
      }
    }
  }
  if (!deployment.nodes.empty() && !main) {
    addIssue(issues, "deployment.nodes",
             "needs a node with role = \"main\": the one web.public_url reaches");
  }
}

void validateNetcheck(const Config& config, std::vector<Issue>& issues) {
  const NetcheckConfig& netcheck = config.netcheck;
  checkFields(issues, netcheck, kNetcheckFields);
  // The probe's download test runs through one TURN allocation: a rate above the allocation's
  // limit would measure the limit, not the network.
  const std::uint64_t allocationKbps = config.turn.bandwidthPerAllocationKbps;
  if (allocationKbps != 0 && netcheck.maxKbps > allocationKbps) {
    addIssue(issues, "netcheck.max_kbps",
             fmt::format("must not exceed turn.bandwidth_per_allocation_kbps ({}), got {}",
                         allocationKbps, netcheck.maxKbps),
             "turn.bandwidth_per_allocation_kbps");
  }
}

void validateInto(const Config& config, std::vector<Issue>& issues) {
  checkRange(issues, "server.threads", config.server.threads, kThreads);
  if (config.server.dataDir.empty()) {
    addIssue(issues, "server.data_dir", "must not be empty (\".\" is the working directory)");
  }

  if (!log::isValidLevel(config.log.level)) {
    addIssue(issues, "log.level",
             fmt::format("expected one of {}, got {}", kLevelList, tomlQuote(config.log.level)));
  }
  for (const auto& [module, level] : config.log.moduleLevels) {
    const std::string key = "log.modules." + module;
    if (std::find(std::begin(kLogModules), std::end(kLogModules), module) ==
        std::end(kLogModules)) {
      addIssue(
          issues, key,
          fmt::format("unknown module '{}' (modules: {})", module, fmt::join(kLogModules, ", ")));
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

  validateTurn(config, issues);
  validateTls(config, issues);
  validateWeb(config, issues);
  validateDeployment(config, issues);
  validateNetcheck(config, issues);
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
      readString(*server, "server.data_dir", config.server.dataDir);
    }
    if (const auto* log = section("log")) readLog(*log, config.log);
    if (const auto* stun = section("stun")) readStun(*stun, config.stun);
    if (const auto* turn = section("turn")) readTurn(*turn, config.turn);
    if (const auto* tls = section("tls")) readTls(*tls, config.tls);
    if (const auto* web = section("web")) readWeb(*web, config.web);
    if (const auto* auth = section("auth")) readFields(*auth, config.auth, kAuthFields);
    if (const auto* rooms = section("rooms")) readFields(*rooms, config.rooms, kRoomsFields);
    if (const auto* deployment = section("deployment"))
      readDeployment(*deployment, config.deployment);
    if (const auto* netcheck = section("netcheck")) {
      readBool(*netcheck, "netcheck.enabled", config.netcheck.enabled);
      readFields(*netcheck, config.netcheck, kNetcheckFields);
    }

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

  // "" means none; anything else must be an IP address.
  void readOptionalAddress(const toml::table& table, std::string_view key,
                           std::optional<IpAddress>& out) {
    const toml::node* node = field(table, key);
    if (node == nullptr) return;
    const auto* text = node->as_string();
    if (text != nullptr && text->get().empty()) {
      out.reset();
    } else if (auto address = readAddress(*node, key)) {
      out = address;
    }
  }

  // An array of strings, each checked by `convert` (which reports its own errors and returns
  // nullopt). All or nothing: `out` changes only when every element is good.
  template <typename T, typename Convert>
  void readArray(const toml::table& table, std::string_view key, std::string_view expected,
                 std::vector<T>& out, Convert convert) {
    const toml::node* node = field(table, key);
    if (node == nullptr) return;
    const auto* array = node->as_array();
    if (array == nullptr) {
      typeError(key, *node, expected);
      return;
    }
    std::vector<T> values;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
      auto value = convert((*array)[i], fmt::format("{}[{}]", key, i));
      if (value) {
        values.push_back(std::move(*value));
      } else {
        ok = false;
      }
    }
    if (ok) out = std::move(values);
  }

  std::optional<Cidr> readCidr(const toml::node& node, const std::string& key) {
    const std::string* text = readString(node, key);
    if (text == nullptr) return std::nullopt;
    std::string error;
    auto cidr = Cidr::parse(*text, &error);
    if (!cidr) {
      place(key, &node,
            {"", key, fmt::format("{} is not an address range: {}", tomlQuote(*text), error)});
    }
    return cidr;
  }

  // One { name = "...", password = "..." } table. The password is a secret: no message here
  // quotes it.
  std::optional<TurnUser> readUser(const toml::node& node, const std::string& key) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      typeError(key, node, "a table { name = \"...\", password = \"...\" }");
      return std::nullopt;
    }
    bool ok = true;
    for (const auto& [name, value] : *table) {
      const std::string_view keyName = name.str();
      if (std::find(std::begin(kUserKeys), std::end(kUserKeys), keyName) != std::end(kUserKeys)) {
        continue;
      }
      std::string message = fmt::format("unknown key '{}.{}'", key, keyName);
      for (const auto known : kUserKeys) {
        if (editDistance(keyName, known) <= std::max<std::size_t>(1, known.size() / 3)) {
          message += fmt::format(" (did you mean '{}.{}'?)", key, known);
          break;
        }
      }
      place(key + "." + std::string(keyName), &value, {"", "", std::move(message)}, &name.source());
      ok = false;
    }
    TurnUser user;
    for (const auto part : kUserKeys) {
      const toml::node* value = table->get(part);
      const std::string partKey = key + "." + std::string(part);
      if (value == nullptr) {
        place(key, &node, {"", key, fmt::format("missing '{}'", part)});
        ok = false;
      } else if (const std::string* text = readString(*value, partKey)) {
        (part == "name" ? user.name : user.password) = *text;
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return user;
  }

  void readTurn(const toml::table& table, TurnConfig& out) {
    readBool(table, "turn.enabled", out.enabled);
    readString(table, "turn.realm", out.realm);
    readArray(
        table, "turn.users", "an array of tables { name = \"...\", password = \"...\" }", out.users,
        [this](const toml::node& node, const std::string& key) { return readUser(node, key); });
    readArray(table, "turn.secrets", "an array of strings", out.secrets,
              [this](const toml::node& node, const std::string& key) -> std::optional<std::string> {
                const std::string* text = readString(node, key);
                if (text == nullptr) return std::nullopt;
                return *text;
              });
    readInt(table, "turn.nonce_lifetime_seconds", kNonceLifetime, out.nonceLifetimeSeconds);
    readInt(table, "turn.default_lifetime_seconds", kDefaultLifetime, out.defaultLifetimeSeconds);
    readInt(table, "turn.max_lifetime_seconds", kMaxLifetime, out.maxLifetimeSeconds);
    readInt(table, "turn.permission_lifetime_seconds", kPermissionLifetime,
            out.permissionLifetimeSeconds);
    readInt(table, "turn.channel_lifetime_seconds", kChannelLifetime, out.channelLifetimeSeconds);
    readInt(table, "turn.max_allocations", kMaxAllocations, out.maxAllocations);
    readInt(table, "turn.max_allocations_per_user", kMaxAllocationsPerUser,
            out.maxAllocationsPerUser);
    readInt(table, "turn.max_permissions_per_allocation", kMaxPermissionsPerAllocation,
            out.maxPermissionsPerAllocation);
    readInt(table, "turn.bandwidth_per_allocation_kbps", kBandwidthKbps,
            out.bandwidthPerAllocationKbps);
    readInt(table, "turn.total_bandwidth_kbps", kBandwidthKbps, out.totalBandwidthKbps);
    readOptionalAddress(table, "turn.relay_address", out.relayAddress);
    readOptionalAddress(table, "turn.relay_address_v6", out.relayAddressV6);
    readOptionalAddress(table, "turn.external_address", out.externalAddress);
    readOptionalAddress(table, "turn.external_address_v6", out.externalAddressV6);
    readInt(table, "turn.relay_port_min", kRelayPort, out.relayPortMin);
    readInt(table, "turn.relay_port_max", kRelayPort, out.relayPortMax);
    const auto cidr = [this](const toml::node& node, const std::string& key) {
      return readCidr(node, key);
    };
    readArray(table, "turn.allowed_peers", "an array of address range strings", out.allowedPeers,
              cidr);
    readArray(table, "turn.denied_peers", "an array of address range strings", out.deniedPeers,
              cidr);
    readInt(table, "turn.relay_socket_buffer_bytes", kRelaySocketBufferBytes,
            out.relaySocketBufferBytes);
    readInt(table, "turn.credential_ttl_seconds", kCredentialTtl, out.credentialTtlSeconds);
    readInt(table, "turn.unauthenticated_per_second", kUnauthenticatedPerSecond,
            out.unauthenticatedPerSecond);
  }

  void readTls(const toml::table& table, TlsConfig& out) {
    readBool(table, "tls.enabled", out.enabled);
    readBool(table, "tls.dtls", out.dtls);
    readInt(table, "tls.port", kPort, out.port);
    readString(table, "tls.cert_file", out.certFile);
    readString(table, "tls.key_file", out.keyFile);
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

  // An array of IP address strings; all or nothing.
  void readAddressList(const toml::table& table, std::string_view key,
                       std::vector<IpAddress>& out) {
    const toml::node* node = field(table, key);
    if (node == nullptr) return;
    const auto* array = node->as_array();
    if (array == nullptr) {
      typeError(key, *node, "an array of IP address strings");
      return;
    }
    std::vector<IpAddress> addresses;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const auto address = readAddress((*array)[i], fmt::format("{}[{}]", key, i));
      if (address) {
        addresses.push_back(*address);
      } else {
        ok = false;
      }
    }
    if (ok) out = std::move(addresses);
  }

  template <typename Section, std::size_t N>
  void readFields(const toml::table& table, Section& out,
                  const UnsignedField<Section> (&fields)[N]) {
    for (const auto& descriptor : fields)
      readInt(table, descriptor.key, descriptor.limit, out.*descriptor.member);
  }

  void readWeb(const toml::table& table, WebConfig& out) {
    readAddressList(table, "web.listen", out.listen);
    readInt(table, "web.https_port", kPort, out.httpsPort);
    readInt(table, "web.http_port", kPort, out.httpPort);
    readBool(table, "web.http_redirect", out.httpRedirect);
    readString(table, "web.public_url", out.publicUrl);
    readString(table, "web.client_dir", out.clientDir);
    readBool(table, "web.turn_over_https", out.turnOverHttps);
    readArray(table, "web.proxy_protocol_from", "an array of address range strings",
              out.proxyProtocolFrom, [this](const toml::node& node, const std::string& key) {
                return readCidr(node, key);
              });
    readFields(table, out, kWebFields);
  }

  void readStun(const toml::table& table, StunConfig& out) {
    readAddressList(table, "stun.listen", out.listen);
    readInt(table, "stun.port", kPort, out.port);
    readBool(table, "stun.udp", out.udp);
    readBool(table, "stun.tcp", out.tcp);
    readOptionalAddress(table, "stun.alternate_address", out.alternateAddress);
    readInt(table, "stun.alternate_port", kAlternatePort, out.alternatePort);
    readString(table, "stun.software", out.software);
    readInt(table, "stun.tcp_idle_timeout_seconds", kTcpIdleTimeoutSeconds,
            out.tcpIdleTimeoutSeconds);
    readInt(table, "stun.tcp_max_connections", kTcpMaxConnections, out.tcpMaxConnections);
    readInt(table, "stun.tcp_max_message_size", kTcpMaxMessageSize, out.tcpMaxMessageSize);
  }

  // One { name, role, region, addresses } table of deployment.nodes: shapes and types here,
  // values in validateDeployment().
  std::optional<DeploymentNode> readNode(const toml::node& node, const std::string& key) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      typeError(key, node,
                "a table { name = \"...\", role = \"...\", region = \"...\", addresses = "
                "[...] }");
      return std::nullopt;
    }
    bool ok = true;
    for (const auto& [name, value] : *table) {
      const std::string_view keyName = name.str();
      if (std::find(std::begin(kNodeKeys), std::end(kNodeKeys), keyName) != std::end(kNodeKeys)) {
        continue;
      }
      std::string message = fmt::format("unknown key '{}.{}'", key, keyName);
      for (const auto known : kNodeKeys) {
        if (editDistance(keyName, known) <= std::max<std::size_t>(1, known.size() / 3)) {
          message += fmt::format(" (did you mean '{}.{}'?)", key, known);
          break;
        }
      }
      place(key + "." + std::string(keyName), &value, {"", "", std::move(message)}, &name.source());
      ok = false;
    }
    DeploymentNode result;
    if (const toml::node* name = table->get("name")) {
      if (const std::string* text = readString(*name, key + ".name")) {
        result.name = *text;
      } else {
        ok = false;
      }
    } else {
      place(key, &node, {"", key, "missing 'name'"});
      ok = false;
    }
    if (const toml::node* role = table->get("role")) {
      if (const std::string* text = readString(*role, key + ".role")) {
        const auto* found = std::find(std::begin(kNodeRoles), std::end(kNodeRoles), *text);
        if (found == std::end(kNodeRoles)) {
          place(key + ".role", role,
                {"", key + ".role",
                 fmt::format("expected one of \"main\", \"failover\", \"turn\", \"media\", got {}",
                             tomlQuote(*text))});
          ok = false;
        } else {
          result.role = static_cast<NodeRole>(found - std::begin(kNodeRoles));
        }
      } else {
        ok = false;
      }
    }
    if (const toml::node* region = table->get("region")) {
      if (const std::string* text = readString(*region, key + ".region")) {
        result.region = *text;
      } else {
        ok = false;
      }
    }
    const toml::node* addresses = table->get("addresses");
    if (addresses == nullptr) {
      place(key, &node, {"", key, "missing 'addresses'"});
      ok = false;
    } else if (const auto* array = addresses->as_array()) {
      for (std::size_t i = 0; i < array->size(); ++i) {
        if (auto range = readCidr((*array)[i], fmt::format("{}.addresses[{}]", key, i))) {
          result.addresses.push_back(*range);
        } else {
          ok = false;
        }
      }
    } else {
      typeError(key + ".addresses", *addresses, "an array of address or range strings");
      ok = false;
    }
    if (!ok) return std::nullopt;
    return result;
  }

  void readDeployment(const toml::table& table, DeploymentConfig& out) {
    readString(table, "deployment.domain", out.domain);
    readString(table, "deployment.organisation", out.organisation);
    readString(table, "deployment.contact", out.contact);
    readArray(
        table, "deployment.nodes",
        "an array of tables { name = \"...\", role = \"...\", addresses = [...] }", out.nodes,
        [this](const toml::node& node, const std::string& key) { return readNode(node, key); });
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

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error) {
  const auto fail = [error](std::string message) -> std::optional<Cidr> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  const auto slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return fail("expected ADDRESS/LENGTH, e.g. \"10.0.0.0/8\" or \"::1/128\"");
  const unsigned maxLength = address->isV4() ? 32 : 128;
  if (slash == std::string_view::npos) return Cidr{*address, maxLength};
  const std::string_view digits = text.substr(slash + 1);
  unsigned length = 0;
  const bool numeric =
      !digits.empty() && digits.size() <= 3 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) {
    for (const char c : digits)
      length = length * 10 + static_cast<unsigned>(c - '0');
  }
  if (!numeric || length > maxLength) {
    return fail(fmt::format("the prefix length must be 0 to {} for {}", maxLength,
                            address->isV4() ? "IPv4" : "IPv6"));
  }
  return Cidr{*address, length};
}

std::string Cidr::toString() const {
  return fmt::format("{}/{}", network.toString(), prefixLength);
}

std::optional<IpAddress> Config::relayAddressV4() const {
  if (turn.relayAddress) return turn.relayAddress;
  for (const auto& address : stun.listen) {
    if (!address.isV4()) continue;
    if (address.isUnspecified()) return std::nullopt;
    return address;
  }
  return std::nullopt;
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
  line("# Generated state (self-signed certificate, TURN secret); relative to the working dir.");
  line(fmt::format("data_dir = {}", tomlQuote(config.server.dataDir)));
  line("");
  line("[log]");
  line(fmt::format("# Lowest level logged: {}.", kLevelList));
  line(fmt::format("level = {}", tomlQuote(config.log.level)));
  line("# Log line format on stderr: \"text\" for people, \"json\" for log collectors.");
  line(fmt::format("format = {}",
                   tomlQuote(config.log.format == log::Format::Json ? "json" : "text")));
  line("");
  line(fmt::format("# Per-module levels overriding log.level; modules: {}.",
                   fmt::join(kLogModules, ", ")));
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
  line("");

  // Passwords and secrets are never printed: the output may end up in a ticket or a log.
  const TurnConfig& turn = config.turn;
  const auto optionalAddress = [](const std::optional<IpAddress>& address) {
    return tomlQuote(address ? address->toString() : "");
  };
  const auto cidrs = [](const std::vector<Cidr>& list) {
    std::vector<std::string> quoted;
    for (const auto& cidr : list)
      quoted.push_back(tomlQuote(cidr.toString()));
    return fmt::format("[{}]", fmt::join(quoted, ", "));
  };
  line("[turn]");
  line("# TURN relay (RFC 8656) on the STUN listeners.");
  line(fmt::format("enabled = {}", boolText(turn.enabled)));
  line("# REALM of the long-term credentials (1-127 characters).");
  line(fmt::format("realm = {}", tomlQuote(turn.realm)));
  line(fmt::format("# Long-term credentials {{ name, password }}; passwords are not printed ({}).",
                   tomlQuote(kRedacted)));
  if (turn.users.empty()) {
    line("users = []");
  } else {
    line("users = [");
    for (const auto& user : turn.users) {
      line(fmt::format("  {{ name = {}, password = {} }},", tomlQuote(user.name),
                       tomlQuote(kRedacted)));
    }
    line("]");
  }
  line(fmt::format("# TURN REST API shared secrets (rotation: list several); not printed ({}).",
                   tomlQuote(kRedacted)));
  std::vector<std::string> secrets(turn.secrets.size(), tomlQuote(kRedacted));
  line(fmt::format("secrets = [{}]", fmt::join(secrets, ", ")));
  line("# Lifetime of a nonce before 438 Stale Nonce (30-86400 s).");
  line(fmt::format("nonce_lifetime_seconds = {}", turn.nonceLifetimeSeconds));
  line("# Allocation lifetime when the client asks for none (60-3600 s).");
  line(fmt::format("default_lifetime_seconds = {}", turn.defaultLifetimeSeconds));
  line("# Longest allocation lifetime granted (default_lifetime_seconds-86400 s).");
  line(fmt::format("max_lifetime_seconds = {}", turn.maxLifetimeSeconds));
  line("# Permission lifetime (30-3600 s).");
  line(fmt::format("permission_lifetime_seconds = {}", turn.permissionLifetimeSeconds));
  line("# Channel binding lifetime (60-3600 s).");
  line(fmt::format("channel_lifetime_seconds = {}", turn.channelLifetimeSeconds));
  line("# Most allocations on this server (1-1000000).");
  line(fmt::format("max_allocations = {}", turn.maxAllocations));
  line("# Most allocations per user name (1-10000).");
  line(fmt::format("max_allocations_per_user = {}", turn.maxAllocationsPerUser));
  line("# Most permissions (and so channels) per allocation (1-1000).");
  line(fmt::format("max_permissions_per_allocation = {}", turn.maxPermissionsPerAllocation));
  line("# Relayed bandwidth per allocation, both ways together, kbit/s; 0 = unlimited.");
  line(fmt::format("bandwidth_per_allocation_kbps = {}", turn.bandwidthPerAllocationKbps));
  line("# Relayed bandwidth of the whole server, kbit/s; 0 = unlimited.");
  line(fmt::format("total_bandwidth_kbps = {}", turn.totalBandwidthKbps));
  line("# IPv4 address relay sockets bind to; \"\" = the first IPv4 stun.listen address.");
  line(fmt::format("relay_address = {}", optionalAddress(turn.relayAddress)));
  line("# IPv6 address relay sockets bind to; \"\" = none (IPv6 allocations get 440).");
  line(fmt::format("relay_address_v6 = {}", optionalAddress(turn.relayAddressV6)));
  line("# Public IPv4 address advertised behind a 1:1 NAT; \"\" = relay_address.");
  line(fmt::format("external_address = {}", optionalAddress(turn.externalAddress)));
  line("# Public IPv6 address advertised behind a 1:1 NAT; \"\" = relay_address_v6.");
  line(fmt::format("external_address_v6 = {}", optionalAddress(turn.externalAddressV6)));
  line("# Lowest relay port (1024-65535).");
  line(fmt::format("relay_port_min = {}", turn.relayPortMin));
  line("# Highest relay port (relay_port_min-65535).");
  line(fmt::format("relay_port_max = {}", turn.relayPortMax));
  line("# Peer address ranges allowed even though the built-in deny list forbids them.");
  line(fmt::format("allowed_peers = {}", cidrs(turn.allowedPeers)));
  line("# Peer address ranges denied in addition to the built-in deny list.");
  line(fmt::format("denied_peers = {}", cidrs(turn.deniedPeers)));
  line("# Send and receive buffer of each relay socket in bytes (65536-67108864).");
  line(fmt::format("relay_socket_buffer_bytes = {}", turn.relaySocketBufferBytes));
  line("# 401 answers per second per source IP address (1-100000).");
  line(fmt::format("unauthenticated_per_second = {}", turn.unauthenticatedPerSecond));
  line("# Lifetime of the TURN credentials handed to browsers (60-604800 s).");
  line(fmt::format("credential_ttl_seconds = {}", turn.credentialTtlSeconds));
  line("");

  const TlsConfig& tls = config.tls;
  line("[tls]");
  line("# TURN over TLS on port (TCP).");
  line(fmt::format("enabled = {}", boolText(tls.enabled)));
  line("# TURN over DTLS on port (UDP).");
  line(fmt::format("dtls = {}", boolText(tls.dtls)));
  line("# Port for TLS and DTLS; 0 picks a free port.");
  line(fmt::format("port = {}", tls.port));
  line("# PEM certificate chain; \"\" = self-signed, created in server.data_dir.");
  line(fmt::format("cert_file = {}", tomlQuote(tls.certFile)));
  line("# PEM private key; set together with cert_file.");
  line(fmt::format("key_file = {}", tomlQuote(tls.keyFile)));
  line("");

  const WebConfig& web = config.web;
  std::vector<std::string> webListen;
  for (const auto& address : web.listen)
    webListen.push_back(tomlQuote(address.toString()));
  line("[web]");
  line("# Addresses the HTTPS (and redirect) listeners bind to.");
  line(fmt::format("listen = [{}]", fmt::join(webListen, ", ")));
  line("# HTTPS, WSS signaling and the REST API; 0 picks a free port.");
  line(fmt::format("https_port = {}", web.httpsPort));
  line("# Plain HTTP that only redirects to HTTPS; 0 picks a free port.");
  line(fmt::format("http_port = {}", web.httpPort));
  line("# Whether the plain HTTP redirect listener runs.");
  line(fmt::format("http_redirect = {}", boolText(web.httpRedirect)));
  line(
      "# https://HOST[:PORT] as browsers reach this server; \"\" = "
      "https://localhost[:https_port].");
  line(fmt::format("public_url = {}", tomlQuote(web.publicUrl)));
  line("# Directory of the browser client; \"\" = the built-in location.");
  line(fmt::format("client_dir = {}", tomlQuote(web.clientDir)));
  line(
      "# TURN over the HTTPS port too (told apart by its first bytes); browsers get "
      "turns:HOST:PORT.");
  line(fmt::format("turn_over_https = {}", boolText(web.turnOverHttps)));
  line("# Load balancers (address ranges) whose connections start with a PROXY protocol header.");
  line(fmt::format("proxy_protocol_from = {}", cidrs(web.proxyProtocolFrom)));
  const auto printFields = [&](const auto& section, const auto& fields) {
    for (const auto& field : fields) {
      line(fmt::format("# {} ({}-{})", field.comment, field.limit.min, field.limit.max));
      line(
          fmt::format("{} = {}", field.key.substr(field.key.find('.') + 1), section.*field.member));
    }
  };
  printFields(web, kWebFields);
  line("");
  line("[auth]");
  printFields(config.auth, kAuthFields);
  line("");
  line("[rooms]");
  printFields(config.rooms, kRoomsFields);
  line("");

  const DeploymentConfig& deployment = config.deployment;
  line("[deployment]");
  line(
      "# The one domain of the network contract (parley requirements); \"\" = the host of "
      "web.public_url.");
  line(fmt::format("domain = {}", tomlQuote(deployment.domain)));
  line("# Who runs this deployment, shown on the requirements page; \"\" = not named.");
  line(fmt::format("organisation = {}", tomlQuote(deployment.organisation)));
  line("# Whom customers' IT may ask, e.g. a support e-mail address; \"\" = not named.");
  line(fmt::format("contact = {}", tomlQuote(deployment.contact)));
  line("# Nodes { name, role = \"main\"|\"failover\"|\"turn\"|\"media\", region, addresses };");
  line("# [] = one node \"main\" from the server's own addresses (public ones only).");
  if (deployment.nodes.empty()) {
    line("nodes = []");
  } else {
    line("nodes = [");
    for (const auto& node : deployment.nodes) {
      line(fmt::format("  {{ name = {}, role = {}, region = {}, addresses = {} }},",
                       tomlQuote(node.name),
                       tomlQuote(kNodeRoles[static_cast<std::size_t>(node.role)]),
                       tomlQuote(node.region), cidrs(node.addresses)));
    }
    line("]");
  }
  line("");
  line("[netcheck]");
  line("# The network check's server side: POST /api/v1/netcheck, its echo, grading, probe peer.");
  line(fmt::format("enabled = {}", boolText(config.netcheck.enabled)));
  printFields(config.netcheck, kNetcheckFields);
  return out;
}

std::string Config::deploymentDomain() const {
  if (!deployment.domain.empty()) return lowerCase(deployment.domain);
  const std::string host = urlHost(publicUrl());
  if (IpAddress::parse(host)) return {};
  return lowerCase(host);
}

std::string Config::publicUrl() const {
  if (!web.publicUrl.empty()) {
    std::string url = web.publicUrl;
    while (url.ends_with('/'))
      url.pop_back();
    return url;
  }
  if (web.httpsPort == 443) return "https://localhost";
  return fmt::format("https://localhost:{}", web.httpsPort);
}

}  // namespace parley::config
