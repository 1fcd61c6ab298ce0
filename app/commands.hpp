// The parley subcommands. Each add*Command() registers its options on `app` and, when its
// subcommand is chosen, stores in `run` the action main() calls after parsing succeeded.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <parley/config/config.hpp>
#include <parley/net/stun_server.hpp>

namespace parley::app {

using Action = std::function<int()>;

// Exit statuses: documented in docs/config.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;  // e.g. a port already in use
inline constexpr int kExitUsage = 2;    // bad flags or bad configuration; nothing started

// --config, --set and the convenience flags shared by serve, turn and config print.
struct ConfigFlags {
  std::string configFile;  // empty: look up PARLEY_CONFIG, then ./parley.toml
  std::vector<std::string> sets;
  std::vector<std::string> listen;
  std::string stunPort;
  std::string alternateAddress;
  std::string threads;
  std::string logLevel;
  std::string logFormat;
};

void addConfigFlags(CLI::App& command, ConfigFlags& flags);
// --set values in order, then the convenience flags, as "key=TOML_VALUE" overrides.
std::vector<std::string> toOverrides(const ConfigFlags& flags);
// Prints every error as "parley: ..." on stderr.
void printErrors(const config::ConfigErrors& errors);

// The one place config becomes server options.
net::StunServerOptions toStunServerOptions(const config::Config& config);

void addServeCommands(CLI::App& app, Action& run);  // serve, turn
void addConfigCommand(CLI::App& app, Action& run);  // config check, config print

}  // namespace parley::app
