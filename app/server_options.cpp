#include <chrono>
#include <thread>

#include <parley/config/config.hpp>
#include <parley/net/stun_server.hpp>

#include "commands.hpp"

namespace parley::app {
namespace {

std::vector<turn::Cidr> toCidrs(const std::vector<config::Cidr>& ranges) {
  std::vector<turn::Cidr> cidrs;
  cidrs.reserve(ranges.size());
  for (const auto& range : ranges)
    cidrs.push_back(turn::Cidr{range.network, range.prefixLength});
  return cidrs;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> turnUsers(const config::Config& config) {
  std::vector<std::pair<std::string, std::string>> users;
  users.reserve(config.turn.users.size());
  for (const auto& user : config.turn.users)
    users.emplace_back(user.name, user.password);
  return users;
}

net::StunServerOptions toStunServerOptions(const config::Config& config) {
  const config::StunConfig& stun = config.stun;
  net::StunServerOptions options;
  options.listenAddresses = stun.listen;
  options.port = stun.port;
  options.alternateAddress = stun.alternateAddress;
  options.alternatePort = stun.alternatePort;
  options.udp = stun.udp;
  options.tcp = stun.tcp;
  // 0 means one worker per core; hardware_concurrency() may itself report 0 (unknown).
  options.threads = config.server.threads != 0 ? config.server.threads
                                               : std::max(1u, std::thread::hardware_concurrency());
  options.software = stun.software;
  options.tcpIdleTimeout = std::chrono::seconds(stun.tcpIdleTimeoutSeconds);
  options.tcpMaxConnections = stun.tcpMaxConnections;
  options.tcpMaxMessageSize = stun.tcpMaxMessageSize;

  const config::TurnConfig& turn = config.turn;
  net::TurnRelayOptions& relay = options.turn;
  relay.enabled = turn.enabled;
  turn::Options& protocol = relay.protocol;
  protocol.realm = turn.realm;
  protocol.software = stun.software;
  protocol.users = turnUsers(config);
  protocol.restSecrets = turn.secrets;
  protocol.nonceLifetime = std::chrono::seconds(turn.nonceLifetimeSeconds);
  protocol.defaultLifetime = std::chrono::seconds(turn.defaultLifetimeSeconds);
  protocol.maxLifetime = std::chrono::seconds(turn.maxLifetimeSeconds);
  protocol.permissionLifetime = std::chrono::seconds(turn.permissionLifetimeSeconds);
  protocol.channelLifetime = std::chrono::seconds(turn.channelLifetimeSeconds);
  protocol.maxAllocationsPerUser = turn.maxAllocationsPerUser;
  protocol.maxPermissionsPerAllocation = turn.maxPermissionsPerAllocation;
  protocol.bandwidthPerAllocation = turn.bandwidthPerAllocationKbps * 1000 / 8;  // bytes/s
  // Each worker enforces its share: clients spread over workers by SO_REUSEPORT hashing.
  protocol.bandwidthTotal = turn.totalBandwidthKbps * 1000 / 8 / options.threads;
  protocol.unauthenticatedPerSecond = turn.unauthenticatedPerSecond;
  relay.allowedPeers = toCidrs(turn.allowedPeers);
  relay.deniedPeers = toCidrs(turn.deniedPeers);
  relay.relayAddressV4 = config.relayAddressV4();
  relay.relayAddressV6 = turn.relayAddressV6;
  relay.externalAddressV4 = turn.externalAddress;
  relay.externalAddressV6 = turn.externalAddressV6;
  relay.relayPortMin = turn.relayPortMin;
  relay.relayPortMax = turn.relayPortMax;
  relay.maxAllocationsTotal = turn.maxAllocations;
  relay.relaySocketBufferBytes = static_cast<int>(turn.relaySocketBufferBytes);
  return options;
}

std::filesystem::path databasePath(const config::Config& config) {
  return std::filesystem::path(config.server.dataDir) / "parley.db";
}

std::filesystem::path tokenKeyPath(const config::Config& config) {
  return std::filesystem::path(config.server.dataDir) / "token-key";
}

auth::PasswordPolicy passwordPolicy(const config::Config& config) {
  auth::PasswordPolicy policy;
  policy.opsLimit = config.auth.passwordIterations;
  policy.memLimitBytes = static_cast<std::size_t>(config.auth.passwordMemoryKib) * 1024;
  return policy;
}

}  // namespace parley::app
