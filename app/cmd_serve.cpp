// parley serve / parley turn: load the config, start the STUN server, run until SIGINT or
// SIGTERM.
#include <cstring>
#include <memory>
#include <system_error>

#include <pthread.h>
#include <signal.h>

#include <parley/base/log.hpp>
#include <parley/config/config.hpp>
#include <parley/net/stun_server.hpp>
#include <parley/version.hpp>

#include "commands.hpp"

namespace parley::app {
namespace {

enum class Role { Serve, Turn };

const char* roleName(Role role) {
  return role == Role::Serve ? "serve" : "turn";
}

// Blocks SIGINT and SIGTERM in this thread and so in every thread started after it; the
// main thread then collects them with sigwait() instead of running async handlers.
sigset_t blockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (const int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0) {
    throw std::system_error(error, std::generic_category(), "pthread_sigmask");
  }
  return signals;
}

int waitForShutdownSignal(const sigset_t& signals) {
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

int runServer(const ConfigFlags& flags, Role role) {
  const auto file = config::resolveConfigPath(
      flags.configFile.empty() ? std::nullopt
                               : std::optional<std::filesystem::path>(flags.configFile));
  const auto config = config::loadConfig(file, toOverrides(flags));
  if (!config) {
    printErrors(config.error());
    return kExitUsage;
  }
  log::configure(config->log);
  const auto logger = log::get("app");
  logger->info("parley {} {}", kVersion, roleName(role));
  logger->info("config: {}", file ? file->string() : std::string("built-in defaults"));
  if (role == Role::Serve && !file) {
    logger->info(
        "no config file found (--config, PARLEY_CONFIG, ./parley.toml): running the embedded "
        "default configuration; 'parley config print' shows it");
  }

  const sigset_t signals = blockShutdownSignals();
  const net::StunServerOptions options = toStunServerOptions(*config);
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

  const int signal = waitForShutdownSignal(signals);
  logger->info("shutting down (SIG{})", sigabbrev_np(signal));
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
                   "Run the Parley server (this release: the STUN server); without a config file "
                   "it runs the embedded default configuration");
  addServerCommand(app, run, Role::Turn,
                   "STUN/TURN only, for relay nodes (TURN relay arrives in a later release; today "
                   "STUN only)");
}

}  // namespace parley::app
