#include <chrono>
#include <thread>

#include <parley/config/config.hpp>
#include <parley/net/stun_server.hpp>

#include "commands.hpp"

namespace parley::app {

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
  return options;
}

}  // namespace parley::app
