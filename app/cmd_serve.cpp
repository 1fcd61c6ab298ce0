// parley serve / parley turn: load the config, start the STUN/TURN server, run until SIGINT or
// SIGTERM; SIGHUP re-reads the TURN credentials.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <memory>
#include <system_error>

#include <boost/asio/ip/tcp.hpp>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <parley/api/platform.hpp>
#include <parley/auth/auth.hpp>
#include <parley/base/log.hpp>
#include <parley/config/config.hpp>
#include <parley/net/probe_peer.hpp>
#include <parley/net/stun_server.hpp>
#include <parley/requirements/requirements.hpp>
#include <parley/store/store.hpp>
#include <parley/tls/certificate.hpp>
#include <parley/tls/context.hpp>
#include <parley/version.hpp>
#include <parley/web/server.hpp>

#include "commands.hpp"

namespace parley::app {

namespace {

enum class Role { Serve, Turn };

const char* roleName(Role role) {
  return role == Role::Serve ? "serve" : "turn";
}

// Blocks SIGINT, SIGTERM and SIGHUP in this thread and so in every thread started after it;
// the main thread then collects them with sigwait() instead of running async handlers.
sigset_t blockSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  if (const int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0) {
    throw std::system_error(error, std::generic_category(), "pthread_sigmask");
  }
  return signals;
}

int waitForSignal(const sigset_t& signals) {
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

// What the config file and the flags are re-read from on SIGHUP.
struct Source {
  std::optional<std::filesystem::path> file;
  std::vector<std::string> overrides;
};

// The TURN credentials in use: the configured ones, or on `parley serve` without any, the
// secret from data_dir/turn-secret. nullopt (after logging why) when there are none to use.
struct Credentials {
  std::vector<std::pair<std::string, std::string>> users;
  std::vector<std::string> secrets;
};

const char* const kRelayNodeNeedsCredentials =
    "turn.enabled is true but there are no TURN credentials: a relay node ('parley turn') must "
    "share the deployment's TURN REST secret. Set turn.secrets (or --turn-secret SECRET) to the "
    "secret of the main server (its server.data_dir/turn-secret), add turn.users (or "
    "--turn-user NAME:PASSWORD), or set turn.enabled = false";

Credentials credentialsOf(const config::Config& config, Role role,
                          const std::shared_ptr<spdlog::logger>& logger) {
  Credentials credentials{turnUsers(config), config.turn.secrets};
  if (!credentials.users.empty() || !credentials.secrets.empty()) return credentials;
  if (role == Role::Turn) throw std::runtime_error(kRelayNodeNeedsCredentials);
  const TurnSecretFile file = loadOrCreateTurnSecret(config.server.dataDir);
  if (file.created) {
    logger->info("TURN REST secret generated in {}", file.path.string());
  } else {
    logger->info("TURN REST secret read from {}", file.path.string());
  }
  if (file.widePermissions) {
    logger->warn("{} can be read by other users; chmod 600 it", file.path.string());
  }
  credentials.secrets.push_back(file.secret);
  return credentials;
}

void logTurn(const net::StunServerOptions& options, const Credentials& credentials,
             const std::shared_ptr<spdlog::logger>& logger) {
  const net::TurnRelayOptions& turn = options.turn;
  if (!turn.enabled) {
    logger->info("turn relay disabled (turn.enabled = false)");
    return;
  }
  const auto relay = [&](const std::optional<IpAddress>& address,
                         const std::optional<IpAddress>& external) {
    if (!address) return;
    logger->info("turn relay on {} ports {}-{}{}", address->toString(), turn.relayPortMin,
                 turn.relayPortMax,
                 external ? ", external address " + external->toString() : std::string());
  };
  relay(turn.relayAddressV4, turn.externalAddressV4);
  relay(turn.relayAddressV6, turn.externalAddressV6);
  // Counts only: never a name's password or a secret.
  logger->info("turn realm {}, {} users, {} secrets", config::tomlQuote(turn.protocol.realm),
               credentials.users.size(), credentials.secrets.size());
}

// The certificate for TURN over TLS/DTLS: the configured files, else a self-signed one in the
// data directory for the listen addresses and "localhost". Throws with the reason.
tls::CertificatePaths certificatePaths(const config::Config& config) {
  if (!config.tls.certFile.empty()) return {config.tls.certFile, config.tls.keyFile};
  std::vector<std::string> names{"localhost"};
  for (const auto* list : {&config.stun.listen, &config.web.listen}) {
    for (const IpAddress& address : *list) {
      const std::string name = address.toString();
      if (!address.isUnspecified() && std::find(names.begin(), names.end(), name) == names.end())
        names.push_back(name);
    }
  }
  return tls::ensureSelfSigned(config.server.dataDir, names);
}

// Port 0 asks for a free port (tests). The web platform needs its real port before it starts,
// for links and Origin checks, so the app picks one here: bind, read, release.
std::uint16_t pickFreePort(const IpAddress& address) {
  namespace asio = boost::asio;
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context);
  const auto ip = asio::ip::make_address(address.toString());
  acceptor.open(ip.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6());
  acceptor.bind({ip, 0});
  return acceptor.local_endpoint().port();
}

// Thousands of WebSockets and TURN sockets need more descriptors than the usual soft limit.
void raiseDescriptorLimit(const std::shared_ptr<spdlog::logger>& logger) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    logger->warn("could not raise the open-file limit: {}", std::strerror(errno));
  }
}

// The TURN counters in Prometheus text format, for /metrics.
std::string turnMetrics(const net::StunServer& server) {
  const turn::Counters turn = server.turnCounters();
  std::string out;
  const auto counter = [&out](std::string_view name, std::string_view help, std::uint64_t value,
                              std::string_view type = "counter") {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  counter("parley_turn_allocations_active", "TURN allocations now.", turn.allocationsActive,
          "gauge");
  counter("parley_turn_allocations_created_total", "TURN allocations created.",
          turn.allocationsCreated);
  counter("parley_turn_relayed_packets_to_peer_total", "Packets relayed to peers.",
          turn.packetsToPeer);
  counter("parley_turn_relayed_bytes_to_peer_total", "Bytes relayed to peers.", turn.bytesToPeer);
  counter("parley_turn_relayed_packets_to_client_total", "Packets relayed to clients.",
          turn.packetsToClient);
  counter("parley_turn_relayed_bytes_to_client_total", "Bytes relayed to clients.",
          turn.bytesToClient);
  counter("parley_turn_auth_failures_total", "TURN requests with wrong credentials.",
          turn.authFailures);
  counter("parley_turn_forbidden_peers_total", "Relay attempts to denied peer addresses.",
          turn.forbiddenPeers);
  counter("parley_turn_quota_rejections_total", "Allocations refused by quota.",
          turn.quotaRejections);
  return out;
}

// "AB:CD:…" (tls::ServerContext::fingerprint) as the network check publishes it: lowercase hex
// without separators.
std::string plainHex(std::string_view fingerprint) {
  std::string hex;
  hex.reserve(fingerprint.size());
  for (const char c : fingerprint) {
    if (c != ':') hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return hex;
}

// The SHA-256 of every certificate presented on HTTPS and TURN-TLS, read from the holders at
// each call, so what a SIGHUP reloaded shows at once.
std::function<std::vector<std::string>()> certificateFingerprints(
    std::vector<std::shared_ptr<tls::ContextHolder>> holders) {
  return [holders = std::move(holders)] {
    std::vector<std::string> fingerprints;
    for (const auto& holder : holders) {
      if (!holder) continue;
      std::string hex = plainHex(holder->current()->fingerprint());
      if (std::find(fingerprints.begin(), fingerprints.end(), hex) == fingerprints.end())
        fingerprints.push_back(std::move(hex));
    }
    return fingerprints;
  };
}

// The network check's probe peer counters in Prometheus text format, for /metrics.
std::string probeMetrics(const net::ProbePeer& probe) {
  const net::ProbePeerCounters counters = probe.counters();
  std::string out;
  const auto counter = [&out](std::string_view name, std::string_view help, std::uint64_t value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, value);
  };
  counter("parley_probe_sessions_total", "Network-check probe sessions started (valid HELLO).",
          counters.sessionsStarted);
  counter("parley_probe_datagrams_total", "Datagrams the network-check probe peer received.",
          counters.datagramsIn);
  counter("parley_probe_bytes_sent_total", "Bytes the network-check probe peer sent.",
          counters.bytesSent);
  counter("parley_probe_dropped_total",
          "Probe datagrams dropped: malformed, wrong source, bad ticket, over a limit, or not "
          "sent.",
          counters.dropped);
  return out;
}

// Where the probe peer binds: the relay address (IPv4 first), else the first listen address;
// nullopt when that is a wildcard (the relay could not name it to clients).
std::optional<IpAddress> probeAddress(const net::TurnRelayOptions& relay,
                                      const config::Config& config) {
  if (relay.relayAddressV4) return relay.relayAddressV4;
  if (relay.relayAddressV6) return relay.relayAddressV6;
  if (!config.stun.listen.empty() && !config.stun.listen.front().isUnspecified())
    return config.stun.listen.front();
  return std::nullopt;
}

// The probe peer of `parley serve` (docs/netcheck.md): bound now, so the TURN server can be told
// to relay to exactly its address and port; answers only the relay addresses and valid tickets.
std::unique_ptr<net::ProbePeer> makeProbePeer(const config::Config& config,
                                              net::TurnRelayOptions& relay,
                                              std::shared_ptr<const auth::TokenSigner> signer,
                                              const std::shared_ptr<spdlog::logger>& logger) {
  if (!config.netcheck.enabled || !relay.enabled) return nullptr;
  const auto address = probeAddress(relay, config);
  if (!address) {
    logger->warn(
        "network check: no probe peer (set turn.relay_address); checks will not measure the "
        "media path");
    return nullptr;
  }
  std::vector<IpAddress> relayAddresses;
  for (const auto& each : {relay.relayAddressV4, relay.relayAddressV6}) {
    if (each) relayAddresses.push_back(*each);
  }
  net::ProbePeerOptions options;
  options.bind = {*address, static_cast<std::uint16_t>(config.netcheck.probePort)};
  options.limits.maxKbps = config.netcheck.maxKbps;
  options.limits.maxSeconds = config.netcheck.maxSeconds;
  options.verifyTicket = [signer = std::move(signer)](std::string_view ticket)
      -> std::optional<std::pair<std::uint64_t, netcheck::ProbeResponder::Clock::time_point>> {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    const auto claims = signer->verify(ticket, auth::TokenKind::Netcheck, now);
    if (!claims) return std::nullopt;
    const auto session = netcheck::sessionIdFromHex(claims->id);
    if (!session) return std::nullopt;
    return std::pair{*session, netcheck::ProbeResponder::Clock::now() +
                                   std::chrono::seconds(claims->expiresAt - now)};
  };
  options.fromRelay = [relayAddresses](const Endpoint& source) {
    return std::find(relayAddresses.begin(), relayAddresses.end(), source.address) !=
           relayAddresses.end();
  };
  auto probe = std::make_unique<net::ProbePeer>(std::move(options));
  relay.exemptPeers.push_back(probe->endpoint());
  return probe;
}

// The web platform of `parley serve`: store, tokens, REST + signaling, HTTPS and the redirect.
struct WebPlatform {
  std::unique_ptr<store::Store> store;
  std::shared_ptr<const auth::TokenSigner> signer;  // shared with the probe peer's verifier
  std::unique_ptr<api::Platform> platform;
  std::shared_ptr<tls::ContextHolder> tls;
  std::unique_ptr<web::WebServer> server;
};

web::WebServerOptions webServerOptions(const config::Config& config) {
  const config::WebConfig& web = config.web;
  web::WebServerOptions options;
  options.listen = web.listen;
  options.httpsPort = web.httpsPort;
  if (web.httpRedirect) {
    options.httpPort = web.httpPort;
  } else {
    options.httpPort.reset();
  }
  options.publicOrigin = config.publicUrl();
  options.threads = config.server.threads;
  options.clientDir = web.clientDir.empty() ? std::filesystem::path(PARLEY_CLIENT_DIR)
                                            : std::filesystem::path(web.clientDir);
  options.appRoutes = {"/", "/setup", "/join", "/room/", "/check"};
  for (const auto& range : web.proxyProtocolFrom)
    options.proxyProtocolFrom.push_back(Cidr{range.network, range.prefixLength});
  web::Limits& limits = options.limits;
  limits.maxHeaderBytes = web.maxHeaderBytes;
  limits.maxBodyBytes = web.maxBodyBytes;
  limits.maxConnections = web.maxConnections;
  limits.headerTimeout = std::chrono::seconds(web.headerTimeoutSeconds);
  limits.idleTimeout = std::chrono::seconds(web.idleTimeoutSeconds);
  // 0 = unlimited: a rate no client reaches.
  limits.requestsPerSecondPerIp =
      web.requestsPerSecondPerIp == 0 ? 1e12 : web.requestsPerSecondPerIp;
  limits.requestBurstPerIp = web.requestsPerSecondPerIp == 0 ? 1e12 : web.requestBurstPerIp;
  limits.wsMaxMessageBytes = web.wsMaxMessageBytes;
  limits.wsMaxQueuedBytes = web.wsMaxQueuedBytes;
  limits.wsPingInterval = std::chrono::seconds(web.wsPingIntervalSeconds);
  return options;
}

// The network contract `parley requirements` prints, rendered once for the platform to publish;
// ports picked at start-up (port 0, tests) are the ones the listeners got.
api::NetworkRequirementsPages networkRequirements(const config::Config& config,
                                                  const net::StunServer& turn) {
  config::Config running = config;
  const auto portOf = [](const std::vector<Endpoint>& a, const std::vector<Endpoint>& b) {
    if (!a.empty()) return a.front().port;
    return b.empty() ? std::uint16_t{0} : b.front().port;
  };
  if (running.stun.port == 0) running.stun.port = portOf(turn.udpEndpoints(), turn.tcpEndpoints());
  if (running.tls.port == 0) running.tls.port = portOf(turn.tlsEndpoints(), turn.dtlsEndpoints());
  requirements::Deployment deployment = toRequirementsDeployment(running);
  deployment.generatedAt = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const requirements::Contract contract = requirements::buildContract(deployment);
  for (const auto& warning : contract.warnings)
    log::get("app")->warn("network requirements: {}", warning);
  return {requirements::render(contract, requirements::Format::Json),
          requirements::render(contract, requirements::Format::Html),
          requirements::htmlContentSecurityPolicy()};
}

api::PlatformOptions platformOptions(const config::Config& config, const net::StunServer& turn,
                                     const Credentials& credentials) {
  api::PlatformOptions options;
  options.publicUrl = config.publicUrl();
  std::string host = options.publicUrl.substr(std::string_view("https://").size());
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  options.turn.host = host;
  if (config.web.turnOverHttps && config.turn.enabled) {
    options.turn.httpsPort = publicHttpsPort(options.publicUrl);
  }
  if (!turn.udpEndpoints().empty()) options.turn.udpPort = turn.udpEndpoints().front().port;
  if (!turn.tcpEndpoints().empty()) options.turn.tcpPort = turn.tcpEndpoints().front().port;
  if (!turn.tlsEndpoints().empty()) options.turn.tlsPort = turn.tlsEndpoints().front().port;
  if (!turn.dtlsEndpoints().empty()) options.turn.dtlsPort = turn.dtlsEndpoints().front().port;
  options.turn.realm = config.turn.realm;
  if (config.turn.enabled) options.turn.secrets = credentials.secrets;
  options.turn.credentialTtl = std::chrono::seconds(config.turn.credentialTtlSeconds);
  options.sessionTtl = std::chrono::seconds(config.auth.sessionTtlSeconds);
  options.invitationTtl = std::chrono::seconds(config.auth.invitationTtlSeconds);
  options.guestTtl = std::chrono::seconds(config.auth.guestTtlSeconds);
  options.setupTtl = std::chrono::seconds(config.auth.setupTtlSeconds);
  options.passwords = passwordPolicy(config);
  options.loginThrottle.maxFailures = config.auth.loginMaxFailures;
  options.loginThrottle.window = std::chrono::seconds(config.auth.loginWindowSeconds);
  options.loginThrottle.lockout = std::chrono::seconds(config.auth.loginLockoutSeconds);
  options.rooms.maxParticipants = config.rooms.maxParticipants;
  options.rooms.maxLobby = config.rooms.maxLobby;
  options.rooms.chatHistory = config.rooms.chatHistory;
  options.rooms.reconnectGrace = std::chrono::seconds(config.rooms.reconnectGraceSeconds);
  options.clientErrorsPerMinute = config.web.clientErrorsPerMinute;
  options.networkRequirements = networkRequirements(config, turn);
  const config::NetcheckConfig& netcheck = config.netcheck;
  options.netcheck.enabled = netcheck.enabled;
  options.netcheck.sessionsPerMinute = netcheck.sessionsPerMinute;
  options.netcheck.ttl = std::chrono::seconds(netcheck.ttlSeconds);
  options.netcheck.maxKbps = netcheck.maxKbps;
  options.netcheck.maxSeconds = netcheck.maxSeconds;
  return options;
}

// Opens the store and starts HTTPS; throws with the reason (start-up error).
WebPlatform startWebPlatform(const config::Config& config, const tls::CertificatePaths& certificate,
                             net::StunServer& turn, const Credentials& credentials,
                             std::shared_ptr<tls::ContextHolder> turnTls,
                             std::shared_ptr<const auth::TokenSigner> signer,
                             const net::ProbePeer* probe,
                             const std::shared_ptr<spdlog::logger>& logger) {
  WebPlatform web;
  web.store = store::Store::open(databasePath(config));
  web.signer = std::move(signer);
  const bool turnOverHttps = config.web.turnOverHttps && config.turn.enabled;
  // RFC 7443's "stun.turn" beside http/1.1, so a TURN client offering it is not refused.
  std::vector<std::string> alpn{"http/1.1"};
  if (turnOverHttps) alpn.emplace_back("stun.turn");
  web.tls = std::make_shared<tls::ContextHolder>(tls::ServerContext::load(certificate, alpn));
  api::PlatformOptions platform = platformOptions(config, turn, credentials);
  // TURN-TLS's certificate only when TURN-TLS/DTLS listens.
  if (turn.tlsEndpoints().empty() && turn.dtlsEndpoints().empty()) turnTls.reset();
  platform.netcheck.certificateSha256 = certificateFingerprints({web.tls, std::move(turnTls)});
  if (probe != nullptr) platform.netcheck.probePeer = probe->endpoint().toString();
  web.platform = std::make_unique<api::Platform>(std::move(platform), *web.store, *web.signer);
  web::WebServerOptions options = webServerOptions(config);
  if (turnOverHttps) {
    options.turnHandoff = [&turn](tls::AcceptedStream&& stream) {
      turn.adoptStream(std::move(stream));
    };
  }
  web.server =
      std::make_unique<web::WebServer>(std::move(options), web.tls, *web.platform, *web.platform);
  web.server->start();
  web.platform->setWebCounters([server = web.server.get()] { return server->counters(); });
  web.platform->addMetricsSource([&turn] { return turnMetrics(turn); });
  if (probe != nullptr) web.platform->addMetricsSource([probe] { return probeMetrics(*probe); });
  for (const auto& endpoint : web.server->httpsEndpoints()) {
    logger->info("listening on https {}", endpoint.toString());
  }
  for (const auto& endpoint : web.server->httpEndpoints()) {
    logger->info("listening on http {} (redirects to https)", endpoint.toString());
  }
  return web;
}

// SIGTERM: stop taking new connections, tell every signaling client, give calls (whose media
// runs through TURN, which keeps going) `grace` to end, then close the rest and stop.
void shutDownWeb(WebPlatform& web, std::chrono::seconds grace, const sigset_t& signals,
                 const std::shared_ptr<spdlog::logger>& logger) {
  web.server->stopAccepting();
  web.platform->beginShutdown(5000);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  const timespec poll{0, 100'000'000};
  while (web.server->activeWebSockets() > 0 && std::chrono::steady_clock::now() < deadline) {
    const int signal = sigtimedwait(&signals, nullptr, &poll);
    if (signal == SIGINT || signal == SIGTERM) {
      logger->info("second signal: not waiting for open calls");
      break;
    }
  }
  if (const auto open = web.server->activeWebSockets(); open > 0) {
    logger->info("closing {} signaling connections", open);
  }
  web.server->stop();
}

// SIGHUP: re-read the file with the same flags and hand the new credentials to the server;
// on any problem keep running with the old ones.
void reloadCredentials(const Source& source, const config::Config& running, Role role,
                       net::StunServer& server, const std::shared_ptr<spdlog::logger>& logger) {
  if (!source.file) {
    logger->info("SIGHUP: there is no config file to re-read; credentials unchanged");
    return;
  }
  auto config = config::loadConfig(source.file, source.overrides);
  if (!config) {
    for (const auto& error : config.error().errors)
      logger->error("SIGHUP: {}", error.toString());
    logger->error("SIGHUP: config not reloaded; keeping the old credentials");
    return;
  }
  if (!running.turn.enabled) {
    logger->info("SIGHUP: config re-read; TURN is disabled, so no credentials were reloaded");
    return;
  }
  // The generated secret lives in the data directory the server started with.
  config->server.dataDir = running.server.dataDir;
  Credentials credentials;
  try {
    credentials = credentialsOf(*config, role, logger);
  } catch (const std::exception& error) {
    logger->error("SIGHUP: {}; keeping the old credentials", error.what());
    return;
  }
  const std::size_t users = credentials.users.size();
  const std::size_t secrets = credentials.secrets.size();
  server.updateCredentials(std::move(credentials.users), std::move(credentials.secrets));
  logger->info("credentials reloaded ({} users, {} secrets)", users, secrets);
}

int runServer(const ConfigFlags& flags, Role role) {
  const Source source{
      config::resolveConfigPath(flags.configFile.empty()
                                    ? std::nullopt
                                    : std::optional<std::filesystem::path>(flags.configFile)),
      toOverrides(flags)};
  auto config = config::loadConfig(source.file, source.overrides);
  if (!config) {
    printErrors(config.error());
    return kExitUsage;
  }
  if (role == Role::Turn && config->turn.enabled && config->turn.users.empty() &&
      config->turn.secrets.empty()) {
    printErrors({{{"", "", kRelayNodeNeedsCredentials}}});
    return kExitUsage;
  }
  // Block SIGINT/SIGTERM/SIGHUP before any slow start-up work (secret, certificate): a signal
  // that arrives early is then handled by the wait loop instead of killing the process.
  const sigset_t signals = blockSignals();
  log::configure(config->log);
  const auto logger = log::get("app");
  logger->info("parley {} {}", kVersion, roleName(role));
  logger->info("config: {}", source.file ? source.file->string() : "built-in defaults");
  if (role == Role::Serve && !source.file) {
    logger->info(
        "no config file found (--config, PARLEY_CONFIG, ./parley.toml): running the embedded "
        "default configuration; 'parley config print' shows it");
  }
  const bool serveWeb = role == Role::Serve;
  if (serveWeb) {
    raiseDescriptorLimit(logger);
    try {
      if (config->web.httpsPort == 0)
        config->web.httpsPort = pickFreePort(config->web.listen.front());
      if (config->web.httpRedirect && config->web.httpPort == 0) {
        config->web.httpPort = pickFreePort(config->web.listen.front());
      }
    } catch (const std::exception& error) {
      logger->error("web: cannot bind {}: {}", config->web.listen.front().toString(), error.what());
      return kExitRuntime;
    }
  }

  net::StunServerOptions options = toStunServerOptions(*config);
  Credentials credentials;
  if (options.turn.enabled) {
    try {
      credentials = credentialsOf(*config, role, logger);
    } catch (const std::exception& error) {
      logger->error("{}", error.what());
      return kExitRuntime;
    }
    options.turn.protocol.users = credentials.users;
    options.turn.protocol.restSecrets = credentials.secrets;
  }

  std::optional<tls::CertificatePaths> certificates;
  if (config->tls.enabled || config->tls.dtls || serveWeb) {
    try {
      certificates = certificatePaths(*config);
      // RFC 7443: "stun.turn" is TURN's ALPN id; clients that send no ALPN are served too.
      options.tls.contexts = std::make_shared<tls::ContextHolder>(
          tls::ServerContext::load(*certificates, {"stun.turn"}));
    } catch (const std::exception& error) {
      logger->error("TLS: {}", error.what());
      return kExitRuntime;
    }
    options.tls.tls = config->tls.enabled;
    options.tls.dtls = config->tls.dtls;
    options.tls.port = config->tls.port;
    logger->info("tls certificate {} (sha-256 {})", certificates->cert.string(),
                 options.tls.contexts->current()->fingerprint());
  }

  // The token signer exists before the probe peer, whose tickets it verifies.
  std::shared_ptr<const auth::TokenSigner> signer;
  std::unique_ptr<net::ProbePeer> probe;
  if (serveWeb) {
    try {
      std::filesystem::create_directories(config->server.dataDir);
      signer = std::make_shared<const auth::TokenSigner>(
          std::vector<std::vector<std::uint8_t>>{auth::loadOrCreateKey(tokenKeyPath(*config))});
      probe = makeProbePeer(*config, options.turn, signer, logger);
    } catch (const std::exception& error) {
      logger->error("network check: {}", error.what());
      return kExitRuntime;
    }
  }

  logger->debug("{} worker threads", options.threads);
  net::StunServer server(options);
  try {
    server.start();
  } catch (const net::BindError& error) {
    logger->error("{}", error.what());
    server.stop();
    return kExitRuntime;
  }
  for (const auto& endpoint : server.udpEndpoints()) {
    logger->info("listening on stun+udp {}", endpoint.toString());
  }
  for (const auto& endpoint : server.tcpEndpoints()) {
    logger->info("listening on stun+tcp {}", endpoint.toString());
  }
  for (const auto& endpoint : server.tlsEndpoints()) {
    logger->info("listening on turn+tls {}", endpoint.toString());
  }
  for (const auto& endpoint : server.dtlsEndpoints()) {
    logger->info("listening on turn+dtls {}", endpoint.toString());
  }
  logTurn(options, credentials, logger);

  std::optional<WebPlatform> web;
  if (serveWeb) {
    try {
      web = startWebPlatform(*config, *certificates, server, credentials, options.tls.contexts,
                             signer, probe.get(), logger);
    } catch (const std::exception& error) {
      logger->error("web: {}", error.what());
      if (std::string_view(error.what()).find("ermission denied") != std::string_view::npos &&
          (config->web.httpsPort < 1024 || config->web.httpPort < 1024)) {
        logger->error(
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; for a trial as a normal user "
            "use --https-port 8443 --http-port 8080");
      }
      server.stop();
      return kExitRuntime;
    }
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    if (web->store->advisorCount() == 0) {
      // The embedded default's first step: whoever reads the console sets up the first advisor.
      logger->info("first advisor set-up: {}", web->platform->setupLink(now));
    }
    if (probe) probe->start();
    logger->info("ready at {}/", config->publicUrl());
  }

  for (;;) {
    const int signal = waitForSignal(signals);
    if (signal != SIGHUP) {
      logger->info("shutting down (SIG{})", sigabbrev_np(signal));
      break;
    }
    reloadCredentials(source, *config, role, server, logger);
    if (certificates) {
      // New connections get the re-read certificate; established ones keep theirs.
      try {
        const auto paths = certificatePaths(*config);
        if (options.tls.contexts->reload(paths)) {
          certificates = paths;
          logger->info("tls certificate reloaded (sha-256 {})",
                       options.tls.contexts->current()->fingerprint());
        }
        if (web && web->tls->reload(paths)) logger->info("https certificate reloaded");
      } catch (const std::exception& error) {
        logger->error("SIGHUP: TLS: {}; keeping the old certificate", error.what());
      }
    }
  }
  if (web)
    shutDownWeb(*web, std::chrono::seconds(config->web.shutdownGraceSeconds), signals, logger);
  if (probe) probe->stop();
  server.stop();
  logger->info("stopped");
  return kExitOk;
}

void addServerCommand(CLI::App& app, Action& run, Role role, const std::string& description) {
  CLI::App* command = app.add_subcommand(roleName(role), description);
  auto flags = std::make_shared<ConfigFlags>();
  addConfigFlags(*command, *flags);
  command->callback(
      [&run, flags, role] { run = [flags, role] { return runServer(*flags, role); }; });
}

}  // namespace

void addServeCommands(CLI::App& app, Action& run) {
  addServerCommand(app, run, Role::Serve,
                   "Run the Parley server (web app, REST API, signaling, STUN and the TURN "
                   "relay); without a config file it runs the embedded default configuration");
  addServerCommand(app, run, Role::Turn,
                   "STUN/TURN only, for relay nodes: needs the deployment's TURN credentials "
                   "(turn.secrets or turn.users) unless turn.enabled = false");
}

}  // namespace parley::app
