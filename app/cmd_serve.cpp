// parley serve / parley turn: load the config, start the STUN/TURN server, run until SIGINT or
// SIGTERM; SIGHUP re-reads the TURN credentials.
#include <cstring>
#include <memory>
#include <system_error>

#include <pthread.h>
#include <signal.h>

#include <parley/base/log.hpp>
#include <parley/config/config.hpp>
#include <parley/net/stun_server.hpp>
#include <parley/tls/certificate.hpp>
#include <parley/tls/context.hpp>
#include <parley/version.hpp>

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
  for (const IpAddress& address : config.stun.listen) {
    if (!address.isUnspecified()) names.push_back(address.toString());
  }
  return tls::ensureSelfSigned(config.server.dataDir, names);
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
  const auto config = config::loadConfig(source.file, source.overrides);
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
  if (config->tls.enabled || config->tls.dtls) {
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
      } catch (const std::exception& error) {
        logger->error("SIGHUP: TLS: {}; keeping the old certificate", error.what());
      }
    }
  }
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
                   "Run the Parley server (this release: STUN and the TURN relay); without a "
                   "config file it runs the embedded default configuration");
  addServerCommand(app, run, Role::Turn,
                   "STUN/TURN only, for relay nodes: needs the deployment's TURN credentials "
                   "(turn.secrets or turn.users) unless turn.enabled = false");
}

}  // namespace parley::app
